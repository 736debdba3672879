"""Events and accounts as JSON Lines: the interchange form of docs/events.md."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from distillguard.events.schema import Event


def write_jsonl(objects: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for obj in objects:
        out.write(orjson.dumps(obj))
        out.write(b"\n")
        count += 1
    return count


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object of a JSONL file (blank lines skipped); a bad line raises ValueError naming the line."""
    rows = []
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from None
    return rows


def read_events(path: Path) -> Iterator[Event]:
    """Events from a JSONL file; a bad line raises ValueError naming the line."""
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield Event.from_json(orjson.loads(line))
            except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{path}:{lineno}: not a valid event: {exc}") from exc
