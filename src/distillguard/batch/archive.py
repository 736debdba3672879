"""The archive as replay rows, for the embedded engine: what a JSONL log gives ``detect.analyze``, read from Parquet.

Rows come in :data:`ORDER`: event time, then the stream entry id (``<ms>-<seq>``, compared as numbers), then the
event id. The Spark engine numbers events in the same order (``batch.events``), so both engines break ties alike.
Stored signals of the current version are used as they are; others (a missing or older ``signals_version``) are
computed from the request, as ``distillguard ingest`` would have.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.events.readers import Client, Row
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, RequestSignals
from distillguard.ingest.archive import Archive, Partition, Record, part_files, partition_of, read_archive
from distillguard.ingest.enrich import compute_signals

# The columns analysis reads, and the order both engines replay the archive in.
SIGNAL_FIELDS = tuple(f"sig_{name}" for name in SIGNAL_COLUMNS)
COLUMNS = (
    "stream_id",
    "event_id",
    "ts",
    "account_id",
    "client_ip",
    "user_agent",
    "client_fingerprint",
    "client_tls",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "signals_version",
    *SIGNAL_FIELDS,
)
ORDER = ("ts", "stream_ms", "stream_seq", "event_id")
BATCH_ROWS = 65_536
# A call whose response carries no status (or 0) counts as served, as in the JSONL readers.
DEFAULT_STATUS = 200


def write_records(archive: Archive, records: Iterable[Record], batch: int = 50_000) -> int:
    """Archive ``records`` (signals already set, or None for analysis to compute) as the ingest worker does: in
    batches, one file per hour partition and batch, each written, synced and renamed into place. Returns the
    number of files. For backfills, tests and benchmarks that have events but no stream."""
    files = 0
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, batch)):
        partitions: dict[Partition, list[Record]] = defaultdict(list)
        for record in chunk:
            partitions[partition_of(record.ts_us)].append(record)
        for partition, group in partitions.items():
            archive.stage(partition, group).publish()
            files += 1
    return files


def check_archive(root: Path) -> None:
    """Raise with what is wrong unless ``root`` is an archive directory holding part files."""
    if root.is_file():
        raise ValueError(f"{root} is a file: the archive is the directory `distillguard ingest --out` writes")
    if not root.is_dir():
        raise FileNotFoundError(f"no event archive at {root}")
    if not part_files(root):
        raise ValueError(f"{root} holds no archive files (date=YYYY-MM-DD/hour=HH/part-*.parquet)")


def ordered_table(root: Path) -> pa.Table:
    """The archive's analysis columns, sorted in :data:`ORDER`."""
    check_archive(root)
    table = read_archive(root, COLUMNS)
    parts = pc.split_pattern(table.column("stream_id"), "-", max_splits=1)
    table = table.append_column("stream_ms", pc.cast(pc.list_element(parts, 0), pa.int64()))
    table = table.append_column("stream_seq", pc.cast(pc.list_element(parts, 1), pa.int64()))
    return table.sort_by([(name, "ascending") for name in ORDER])


def archive_rows(
    root: Path, recompute_signals: bool = False, progress: Callable[[int], None] | None = None
) -> list[Row]:
    """Every event of the archive at ``root`` as a replay row, in :data:`ORDER`."""
    rows: list[Row] = []
    bodies = _bodies(root, recompute_signals)
    for batch in ordered_table(root).to_batches(BATCH_ROWS):
        rows.extend(_rows(batch, recompute_signals, bodies))
        if progress is not None:
            progress(batch.num_rows)
    return rows


Bodies = dict[tuple[str, str], tuple[str, str | None]]


def _bodies(root: Path, recompute: bool) -> Bodies:
    """(request JSON, endpoint) of the events whose request must be read: those without signals of the current
    version (or all, with ``recompute``) and those without a model of their own. Request bodies are the bulk of an
    archive, so the others' are never loaded."""
    import pyarrow.dataset as ds

    needed = (ds.field("signals_version") != SIGNALS_VERSION) | ds.field("signals_version").is_null()
    needed = needed | ds.field("model").is_null()
    dataset = ds.dataset([str(path) for path in part_files(root)], format="parquet")
    table = dataset.to_table(
        columns=["stream_id", "event_id", "request", "endpoint"], filter=None if recompute else needed
    )
    columns = [table.column(name).to_pylist() for name in ("stream_id", "event_id", "request", "endpoint")]
    return {
        (stream_id, event_id): (request, endpoint)
        for stream_id, event_id, request, endpoint in zip(*columns, strict=True)
    }


def _rows(batch: pa.RecordBatch, recompute: bool, bodies: Bodies) -> Iterator[Row]:
    def column(name: str) -> list[Any]:
        array = batch.column(name)
        if not pa.types.is_string(array.type):
            values: list[Any] = array.to_pylist()
            return values
        # Text repeats (accounts, models, addresses, templates …): one Python string per distinct value and batch,
        # not one per row, which keeps a log of millions of rows several GB smaller in memory.
        encoded = array.dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]

    # content_sig is stored as a signed int64; the record holds the unsigned SimHash (same bits).
    unsigned = pc.cast(batch.column("sig_content_sig"), pa.uint64(), safe=False)
    signal_columns = [unsigned.to_pylist() if n == "sig_content_sig" else column(n) for n in SIGNAL_FIELDS]
    ts = pc.cast(batch.column("ts"), pa.int64()).to_pylist()
    versions, stream_ids, event_ids = column("signals_version"), column("stream_id"), column("event_id")
    for i, (account_id, status, prompt, completion, model, ip, agent, fingerprint, tls, *values) in enumerate(
        zip(
            column("account_id"),
            column("status"),
            column("prompt_tokens"),
            column("completion_tokens"),
            column("model"),
            column("client_ip"),
            column("user_agent"),
            column("client_fingerprint"),
            column("client_tls"),
            *signal_columns,
            strict=True,
        )
    ):
        request: Any = None
        if recompute or versions[i] != SIGNALS_VERSION:
            body, endpoint = bodies[stream_ids[i], event_ids[i]]
            request = orjson.loads(body)
            signals = compute_signals({"request": request, "endpoint": endpoint})
        else:
            signals = RequestSignals(*values)
        if model is None:
            request = orjson.loads(bodies[stream_ids[i], event_ids[i]][0]) if request is None else request
            model = request_model(request)
        client = Client(ip or None, agent or None, fingerprint or None, None, tls or None)
        yield (
            ts[i],
            account_id,
            status or DEFAULT_STATUS,
            prompt,
            completion,
            model,
            signals,
            None if client == _NO_CLIENT else client,
        )


def request_model(request: Any) -> str | None:
    """The model a request body names, for events that carry no model of their own (as the JSONL reader does)."""
    model = request.get("model") if isinstance(request, dict) else None
    return model if isinstance(model, str) else None


_NO_CLIENT = Client(None, None)
