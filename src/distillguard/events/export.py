"""``distillguard events export``: the embedded event log as JSONL."""

from __future__ import annotations

import sys
from pathlib import Path

from distillguard.events.jsonl import write_jsonl
from distillguard.events.sqlite import EVENTS_DB, iter_events


def export_events(data_dir: Path, out: Path, since_us: int | None = None, until_us: int | None = None) -> int:
    """Write the events of ``data_dir`` in time order to ``out`` (``-`` for stdout); returns how many."""
    rows = (e.to_json() for e in iter_events(data_dir / EVENTS_DB, since_us, until_us))
    if str(out) == "-":
        return write_jsonl(rows, sys.stdout.buffer)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as handle:
        count = write_jsonl(rows, handle)
    tmp.replace(out)
    return count
