"""Batch analysis over the Parquet event archive that ``distillguard ingest`` writes.

Two engines give the same verdicts on the same archive:

- embedded (``distillguard analyze --events ARCHIVE``): :mod:`.archive` reads the archive into replay rows and
  ``detect.analyze`` replays them in one process, as it does a JSONL log;
- Spark (``--engine spark``): the per-account aggregation and the profiles that campaign linking needs run as
  DataFrame jobs (:mod:`.features`, :mod:`.profiles`, :mod:`.replay`); the one-row-per-account results go to the
  same rules, risk model, linking and campaign code as the embedded engine's (:mod:`.spark`).

Both read the archive in one order, :data:`~.archive.ORDER` (time, then the stream entry id), which decides
everything that depends on order: which items a bounded collection keeps, ties, and when an account would have
been flagged.
"""
