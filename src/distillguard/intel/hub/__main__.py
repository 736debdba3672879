"""``python -m distillguard.intel.hub``: the hub's commands without the main CLI (tests, benchmarks)."""

from distillguard.intel.hub.cli import hub_app

hub_app(prog_name="distillguard hub")
