"""Writing a run: the accounts and labels files, and the events of all accounts merged in time order.

Each account is a generator of ``(ts_us, account index, sequence, line)``; ``heapq.merge`` keeps one pending
event per account, so memory is bounded by the number of accounts, not the number of events. Lines are
written in batches through a large buffer.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

EventStream = Iterator[tuple[int, int, int, bytes]]
PROGRESS_EVERY = 20_000
_BATCH = 2048


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as out:
        for record in records:
            out.write(orjson.dumps(record))
            out.write(b"\n")
            count += 1
    return count


def write_events(path: Path, streams: Iterable[EventStream], progress: Callable[[int], None] | None = None) -> int:
    """Merge the per-account streams by time and write them; ``progress(n)`` every ``PROGRESS_EVERY`` events."""
    count = 0
    batch: list[bytes] = []
    next_report = PROGRESS_EVERY
    with path.open("wb", buffering=1 << 20) as out:
        for _, _, _, line in heapq.merge(*streams):
            batch.append(line)
            if len(batch) >= _BATCH:
                out.write(b"\n".join(batch) + b"\n")
                count += len(batch)
                batch.clear()
                if progress is not None and count >= next_report:
                    progress(count)
                    next_report += PROGRESS_EVERY
        if batch:
            out.write(b"\n".join(batch) + b"\n")
            count += len(batch)
    if progress is not None:
        progress(count)
    return count
