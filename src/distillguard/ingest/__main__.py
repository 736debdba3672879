"""``python -m distillguard.ingest``: the ingest command without the rest of the CLI."""

from distillguard.ingest.cli import main

main()
