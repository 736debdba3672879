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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillguard.events.schema import SCHEMA_VERSION
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, RequestSignals, to_object

Partition = tuple[str, str]  # (date "YYYY-MM-DD", hour "HH"), in UTC
# Rows per Parquet row group: a reader after a few rows of a file (the console's latest calls of an account,
# events/archive_calls.py) decodes the prompt and answer columns of their row groups only. Measured on a day of
# 300,000 calls in files of 5,000 (bench/console_archive.py), the slowest account page's read of the archive:
# 294 ms with one group a file, 236 ms with groups of 2,500, 190 ms with 1,000; the archive of simulated events
# 3.3% larger with 2,500, 17% with 1,000.
ROW_GROUP_ROWS = 2500

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


# Where the plain columns sit in the event JSON (docs/events.md). Arrow converts them straight from the parsed
# events, one pass in C over a nested struct; the other columns are derived in build_table.
JSON_PATHS: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id",),
    "account_id": ("account_id",),
    "key_id": ("key_id",),
    "org_id": ("org_id",),
    "client_ip": ("client", "ip"),
    "user_agent": ("client", "user_agent"),
    "client_fingerprint": ("client", "fingerprint"),
    "client_tls": ("client", "tls"),
    "endpoint": ("endpoint",),
    "model": ("model",),
    "upstream": ("upstream",),
    "status": ("response", "status"),
    "prompt_tokens": ("response", "usage", "prompt_tokens"),
    "completion_tokens": ("response", "usage", "completion_tokens"),
    "finish_reason": ("response", "finish_reason"),
    "text": ("response", "text"),
    "text_sha256": ("response", "text_sha256"),
    "latency_ms": ("response", "latency_ms"),
    "ttft_ms": ("response", "ttft_ms"),
    "error_code": ("response", "error_code"),
}


def _nested(types: dict[tuple[str, ...], pa.DataType]) -> tuple[pa.StructType, dict[tuple[str, ...], list[int]]]:
    """The struct type holding each leaf type at its path, and each path as child indices (for ``struct_field``)."""
    tree: dict[str, Any] = {}
    for path, kind in types.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = kind

    def struct(node: dict[str, Any]) -> pa.StructType:
        return pa.struct([(key, struct(value) if isinstance(value, dict) else value) for key, value in node.items()])

    def indices(path: tuple[str, ...]) -> list[int]:
        node, found = tree, []
        for key in path:
            found.append(list(node).index(key))
            node = node[key]
        return found

    return struct(tree), {path: indices(path) for path in types}


_EVENT_STRUCT, _EVENT_INDICES = _nested({path: SCHEMA.field(name).type for name, path in JSON_PATHS.items()})
# The signals object of an event: content_sig is unsigned there, a signed int64 (same bits) in the archive.
_SIGNALS_STRUCT = pa.struct(
    [
        (name, pa.uint64() if name == "content_sig" else field.type)
        for name, field in zip(SIGNAL_COLUMNS, _SIGNAL_FIELDS, strict=True)
    ]
)


class UnfitEvents(ValueError):
    """Values of some events do not fit the archive's columns (another producer's types): see :func:`conform`."""


@dataclass(slots=True)
class Record:
    """One stream entry, decoded: the event JSON, its time, and the signals to archive with it."""

    stream_id: str
    event: dict[str, Any]
    ts_us: int
    # A record (computed or checked); or the event's own ``signals`` object of the current version, as it came (its
    # types are checked by Arrow when the table is built, far cheaper than in Python); or None: no signals.
    signals: RequestSignals | dict[str, Any] | None = None


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis Stream id (``<ms>-<seq>``) as a sortable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def partition_of(ts_us: int) -> Partition:
    moment = datetime.fromtimestamp(ts_us / 1_000_000, UTC)
    return f"{moment:%Y-%m-%d}", f"{moment:%H}"


def partition_start(partition: Partition) -> int:
    """The first microsecond of an hour partition (epoch, UTC): :func:`partition_of` the other way round."""
    date, hour = partition
    return int(datetime.fromisoformat(f"{date}T{hour}:00:00").replace(tzinfo=UTC).timestamp()) * 1_000_000


def partition_dir(root: Path, partition: Partition) -> Path:
    """The directory of an hour partition in the archive at ``root``."""
    date, hour = partition
    return root / f"date={date}" / f"hour={hour}"


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


def in_stream_order(records: Sequence[Record]) -> list[Record]:
    """``records`` sorted by stream id (``<ms>-<seq>``, as numbers), the order of a part file's rows."""
    ids = pa.array([r.stream_id for r in records], pa.string())
    parts = pc.split_pattern(ids, "-", max_splits=1)
    keys = pa.table(
        {"ms": pc.cast(pc.list_element(parts, 0), pa.int64()), "seq": pc.cast(pc.list_element(parts, 1), pa.int64())}
    )
    order = pc.sort_indices(keys, sort_keys=[("ms", "ascending"), ("seq", "ascending")])
    return [records[i] for i in order.to_pylist()]


def _regular(event: dict[str, Any]) -> bool:
    """True when the event's nested objects are objects or null (what the fast conversion takes as it is)."""
    client, response = event.get("client"), event.get("response")
    if not (client is None or type(client) is dict) or not (response is None or type(response) is dict):
        return False
    usage = response.get("usage") if response is not None else None
    return usage is None or type(usage) is dict


def _signals_object(signals: RequestSignals | dict[str, Any] | None) -> dict[str, Any] | None:
    return to_object(signals) if isinstance(signals, RequestSignals) else signals


def build_table(records: Sequence[Record]) -> pa.Table:
    """The rows of ``records``, in their order, in :data:`SCHEMA`.

    Column by column in C: Arrow converts the events' plain fields and their signals from the parsed JSON in one
    pass each (nested structs, then the leaves picked out); Python touches each event only for the request text and
    the few derived columns. Raises :class:`UnfitEvents` when a value does not fit its column (a string for a
    number, an array for an object …); :func:`conform` then finds which events, and why.
    """
    events = [r.event for r in records]
    if not all(map(_regular, events)):
        raise UnfitEvents("client, response or response.usage is not an object")
    dumps = orjson.dumps
    signals = [_signals_object(r.signals) for r in records]
    try:
        body = pa.array(events, type=_EVENT_STRUCT)
        sig = pa.array(signals, type=_SIGNALS_STRUCT)
        derived = {
            "stream_id": pa.array([r.stream_id for r in records], pa.string()),
            "ts": pa.array([r.ts_us for r in records], SCHEMA.field("ts").type),
            "stream": pa.array([bool(e.get("stream", False)) for e in events], pa.bool_()),
            # orjson writes UTF-8, which Arrow takes as it is (no str objects made)
            "request": pa.array([dumps(e["request"]) for e in events], pa.string()),
            "extra": pa.array([dumps(x) if (x := e.get("extra")) else None for e in events], pa.string()),
            "schema_version": pa.array([e.get("schema_version", SCHEMA_VERSION) for e in events], pa.int32()),
            "signals_version": pa.array([None if s is None else SIGNALS_VERSION for s in signals], pa.int32()),
        }
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:  # orjson's errors: TypeError
        raise UnfitEvents(str(exc)) from None
    for name, path in JSON_PATHS.items():
        derived[name] = pc.struct_field(body, _EVENT_INDICES[path])
    for i, name in enumerate(SIGNAL_COLUMNS):
        column = pc.struct_field(sig, [i])
        derived[f"sig_{name}"] = column.view(pa.int64()) if name == "content_sig" else column
    return pa.Table.from_arrays([derived[name] for name in SCHEMA.names], schema=SCHEMA)


def conform(records: Sequence[Record]) -> tuple[list[Record], list[tuple[Record, str]]]:
    """The records the archive can hold, in the form :func:`build_table` takes, and the others with the reason.

    For a batch that :func:`build_table` refused (rare: a producer that does not follow docs/events.md). Ids are
    taken as text and absent, null or empty nested objects as empty ones, as the archive always did; an event that
    still does not fit is left out (the caller keeps it beside the archive) rather than stopping ingest. Signals
    must have been checked (``ingest.enrich``): a stored object of the wrong types would make its event unfit.
    """
    regular: list[Record] = []
    unfit: list[tuple[Record, str]] = []
    for record in records:
        try:
            regular.append(Record(record.stream_id, _regularised(record.event), record.ts_us, record.signals))
        except UnfitEvents as exc:
            unfit.append((record, str(exc)))
    try:
        build_table(regular)
        return regular, unfit
    except UnfitEvents:
        pass
    fit: list[Record] = []
    for record in regular:  # one by one, to tell which
        try:
            build_table([record])
        except UnfitEvents as exc:
            unfit.append((record, _unfit_column(record.event) or str(exc)))
        else:
            fit.append(record)
    return fit, unfit


def _regularised(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with text ids and its nested objects as objects (absent, null or empty ones as ``{}``)."""
    client, response = event.get("client") or {}, event.get("response") or {}
    if not isinstance(client, dict):
        raise UnfitEvents("client is not an object")
    if not isinstance(response, dict):
        raise UnfitEvents("response is not an object")
    usage = response.get("usage") or {}
    if not isinstance(usage, dict):
        raise UnfitEvents("response.usage is not an object")
    return {
        **event,
        "event_id": str(event["event_id"]),
        "account_id": str(event["account_id"]),
        "client": client,
        "response": {**response, "usage": usage},
    }


def _unfit_column(event: dict[str, Any]) -> str | None:
    """Which plain field of a (regularised) event does not fit its column, and why; None if they all do."""
    for name, path in JSON_PATHS.items():
        value: Any = event
        for key in path:
            value = value.get(key)
            if value is None:
                break
        try:
            pa.array([value], SCHEMA.field(name).type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            return f"{'.'.join(path)}: {exc}"
    return None


@dataclass
class StagedFile:
    """A part file written and synced under its temporary name, not yet visible."""

    tmp: Path
    final: Path
    rows: int
    # What was written (the rollups are counted from it).
    table: pa.Table

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
        return partition_dir(self.root, partition)

    def stage(self, partition: Partition, records: Sequence[Record]) -> StagedFile:
        """Write ``records`` (sorted here by stream id) to a synced temporary file in the partition.

        Raises :class:`UnfitEvents` (writing nothing) when some do not fit the columns: see :func:`conform`.
        """
        ordered = in_stream_order(records)
        table = build_table(ordered)
        directory = self.directory(partition)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / file_name(ordered[0].stream_id, ordered[-1].stream_id)
        tmp = directory / f"{self._tmp_prefix}{secrets.token_hex(6)}.{final.name}.tmp"
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return StagedFile(tmp, final, len(ordered), table)

    def files_between(self, partition: Partition, first: str, last: str) -> list[Path]:
        """The partition's part files whose stream-id range meets [first, last].

        An entry archived before is in a file of its own partition whose range contains its stream id, so one of
        these holds it when its id lies in [first, last]; files of other ranges are not opened.
        """
        lo, hi = stream_id_key(first), stream_id_key(last)
        directory = self.directory(partition)
        if not directory.is_dir():
            return []
        found = []
        for path in directory.iterdir():
            bounds = file_range(path.name)
            if bounds is not None and bounds[1] >= lo and bounds[0] <= hi:
                found.append(path)
        return found

    def event_ids_between(self, partition: Partition, first: str, last: str) -> set[str]:
        """Event ids of the partition's files whose stream-id range meets [first, last] (:meth:`files_between`)."""
        return self.event_ids(self.files_between(partition, first, last))

    @staticmethod
    def event_ids(paths: Iterable[Path]) -> set[str]:
        """The event ids the files hold."""
        found: set[str] = set()
        for path in paths:
            found.update(pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist())
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
