"""The event archive: Parquet files partitioned by hour, ``DIR/date=YYYY-MM-DD/hour=HH/part-<first>-<last>.parquet``.

One row per event, in columns that mirror the event JSON (docs/events.md) and the SQLite log's names: the common
fields flattened (``client_ip``, ``prompt_tokens`` …), ``request`` and ``extra`` as JSON text, ``ts`` as a UTC
timestamp, the signals in ``sig_*`` columns (``signals_version`` says which extractor), and ``stream_id``, the
Redis Stream entry the row came from. ``first``/``last`` in the file name are the smallest and largest stream ids
of the file's rows; its rows are sorted by stream id, so the same entries always give the same file, byte for byte.

A file is written under a hidden temporary name (readers skip names starting with ``.``), synced, and renamed into
place, then its directory is synced: a reader (DuckDB, Spark, pyarrow) sees a whole file or none, also after a
crash. Hive-style directory names make ``date`` and ``hour`` partition columns for those engines.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.events.schema import SCHEMA_VERSION
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, RequestSignals, as_row

Partition = tuple[str, str]  # (date "YYYY-MM-DD", hour "HH"), in UTC

_SIGNAL_ARROW_TYPES = {
    "str": pa.string(),
    "str | None": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "int | None": pa.int64(),
    "float | None": pa.float64(),
}
# A new field type in RequestSignals fails here, at import, rather than in a worker at 3 a.m.
_SIGNAL_FIELDS = [pa.field(f"sig_{f.name}", _SIGNAL_ARROW_TYPES[str(f.type)]) for f in fields(RequestSignals)]
_NO_SIGNALS = (None,) * len(SIGNAL_COLUMNS)

SCHEMA = pa.schema(
    [
        pa.field("stream_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("key_id", pa.string()),
        pa.field("org_id", pa.string()),
        pa.field("client_ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("client_fingerprint", pa.string()),
        pa.field("client_tls", pa.string()),
        pa.field("endpoint", pa.string()),
        pa.field("model", pa.string()),
        pa.field("upstream", pa.string()),
        pa.field("stream", pa.bool_()),
        pa.field("request", pa.string(), nullable=False),
        pa.field("status", pa.int32()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("finish_reason", pa.string()),
        pa.field("text", pa.string()),
        pa.field("text_sha256", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("error_code", pa.string()),
        pa.field("extra", pa.string()),
        pa.field("schema_version", pa.int32()),
        pa.field("signals_version", pa.int32()),
        *_SIGNAL_FIELDS,
    ]
)


@dataclass(slots=True)
class Record:
    """One stream entry, decoded: the event JSON, its time, and its signals (given or computed)."""

    stream_id: str
    event: dict[str, Any]
    ts_us: int
    signals: RequestSignals | None = None


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis Stream id (``<ms>-<seq>``) as a sortable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def partition_of(ts_us: int) -> Partition:
    moment = datetime.fromtimestamp(ts_us / 1_000_000, UTC)
    return f"{moment:%Y-%m-%d}", f"{moment:%H}"


def file_name(first: str, last: str) -> str:
    return f"part-{first}-{last}.parquet"


def file_range(name: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The (first, last) stream ids of a part file's name; None for other files."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    parts = name[len("part-") : -len(".parquet")].split("-")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return (int(parts[0]), int(parts[1])), (int(parts[2]), int(parts[3]))


def _opt_json(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value else None


def build_table(records: Sequence[Record]) -> pa.Table:
    """The rows of ``records`` in :data:`SCHEMA` (column by column: one C-level pass per column)."""
    events = [r.event for r in records]
    clients = [e.get("client") or {} for e in events]
    responses = [e.get("response") or {} for e in events]
    usages = [r.get("usage") or {} for r in responses]
    signal_rows = [as_row(r.signals) if r.signals is not None else _NO_SIGNALS for r in records]
    signal_columns = list(zip(*signal_rows, strict=True)) if signal_rows else [()] * len(SIGNAL_COLUMNS)

    def get(rows: list[dict[str, Any]], name: str) -> list[Any]:
        return [row.get(name) for row in rows]

    columns: list[Any] = [
        [r.stream_id for r in records],
        [str(e["event_id"]) for e in events],
        [r.ts_us for r in records],
        [str(e["account_id"]) for e in events],
        get(events, "key_id"),
        get(events, "org_id"),
        get(clients, "ip"),
        get(clients, "user_agent"),
        get(clients, "fingerprint"),
        get(clients, "tls"),
        get(events, "endpoint"),
        get(events, "model"),
        get(events, "upstream"),
        [bool(e.get("stream", False)) for e in events],
        [orjson.dumps(e["request"]).decode() for e in events],
        get(responses, "status"),
        get(usages, "prompt_tokens"),
        get(usages, "completion_tokens"),
        get(responses, "finish_reason"),
        get(responses, "text"),
        get(responses, "text_sha256"),
        get(responses, "latency_ms"),
        get(responses, "ttft_ms"),
        get(responses, "error_code"),
        [_opt_json(e.get("extra")) for e in events],
        [e.get("schema_version", SCHEMA_VERSION) for e in events],
        [SIGNALS_VERSION if r.signals is not None else None for r in records],
        *signal_columns,
    ]
    arrays = [pa.array(list(values), type=field.type) for values, field in zip(columns, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


@dataclass
class StagedFile:
    """A part file written and synced under its temporary name, not yet visible."""

    tmp: Path
    final: Path
    rows: int

    def publish(self) -> Path:
        """Rename into place (atomic) and sync the directory, so the rename survives a crash."""
        os.replace(self.tmp, self.final)
        _fsync_dir(self.final.parent)
        return self.final

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class Archive:
    """The archive directory: writes part files, and tells which events a range of stream ids already holds."""

    def __init__(self, root: Path, writer: str = "ingest") -> None:
        self.root = root
        # Temporary files carry the writer's name, so a restarted worker can remove the ones it left.
        self._tmp_prefix = f".{_safe(writer)}."
        root.mkdir(parents=True, exist_ok=True)

    def directory(self, partition: Partition) -> Path:
        date, hour = partition
        return self.root / f"date={date}" / f"hour={hour}"

    def stage(self, partition: Partition, records: Sequence[Record]) -> StagedFile:
        """Write ``records`` (sorted here by stream id) to a synced temporary file in the partition."""
        ordered = sorted(records, key=lambda r: stream_id_key(r.stream_id))
        directory = self.directory(partition)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / file_name(ordered[0].stream_id, ordered[-1].stream_id)
        tmp = directory / f"{self._tmp_prefix}{secrets.token_hex(6)}.{final.name}.tmp"
        pq.write_table(build_table(ordered), tmp, compression="zstd")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return StagedFile(tmp, final, len(ordered))

    def event_ids_between(self, partition: Partition, first: str, last: str) -> set[str]:
        """Event ids of the partition's files whose stream-id range meets [first, last].

        An entry archived before is in a file of its own partition whose range contains its stream id, so this
        finds it when its id lies in [first, last]; files of other ranges are not opened.
        """
        lo, hi = stream_id_key(first), stream_id_key(last)
        directory = self.directory(partition)
        found: set[str] = set()
        if not directory.is_dir():
            return found
        for path in directory.iterdir():
            bounds = file_range(path.name)
            if bounds is None or bounds[1] < lo or bounds[0] > hi:
                continue
            column = pq.read_table(path, columns=["event_id"]).column("event_id")
            found.update(column.to_pylist())
        return found

    def remove_stale_temporaries(self) -> int:
        """Delete the temporary files this writer left behind (a crash between write and rename)."""
        removed = 0
        for path in self.root.glob(f"date=*/hour=*/{self._tmp_prefix}*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed


def part_files(root: Path) -> list[Path]:
    """Every committed part file of an archive, in path order."""
    return sorted(p for p in root.glob("date=*/hour=*/part-*.parquet") if file_range(p.name) is not None)


def read_archive(root: Path, columns: Iterable[str] | None = None) -> pa.Table:
    """All committed rows of an archive as one table (temporary files are never read)."""
    files = part_files(root)
    wanted = list(columns) if columns is not None else None
    if not files:
        return SCHEMA.empty_table() if wanted is None else SCHEMA.empty_table().select(wanted)
    return pa.concat_tables(pq.read_table(path, columns=wanted) for path in files)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "ingest"
