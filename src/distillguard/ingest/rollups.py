"""Traffic rollups kept by the ingest workers in the state store, for a deployment whose events go to a Redis stream
(there is no events.db for the console and evidence packs to read): calls, errors, refusals and tokens per minute
(``traffic_minutes``) and per account with its first and last call (``account_traffic``), the tables and meaning
of the SQLite event log's rollups (events/rollups.py); and per account and hour (``account_hours``), with the range
of stream ids its calls of that hour were appended at: where in the archive they are (events/archive_calls.py reads
only those hours, and in each only the files whose stream-id range meets it).

What is counted is exactly what the archive holds: each archive file once, from the table written to it (not the
stream's entries: rejected, trimmed and duplicate entries are not in any file). A file's counts go into the store
in one transaction with a row naming the file (``rollup_files``); a file already named is skipped. With the
worker's order (publish the files, then add their counts, then acknowledge the entries) that makes the rollups
exact across crashes:

- **Crash after the counts, before the acknowledgement.** The entries come again (the consumer's pending list, or a
  claim by another worker); they are in the archive already, so the worker drops them and writes no file: nothing
  is counted twice.
- **Crash after publishing, before the counts.** The entries come again and are dropped as archived, but the files
  that hold them are not named in ``rollup_files``: the worker counts those files then (``reconcile``), from their
  own rows, before it acknowledges.
- **Two workers committing the same claimed batch** write the same file (same entries, same name) and both try to
  count it: the file's row is a primary key, so the second transaction fails on it and adds nothing.

A file is aggregated in Arrow first (5,000 calls from 2,000 accounts in a few minutes: a few minute rows and 2,000
account and account-hour rows), each table's rows written by one statement the driver runs for all of them, in key
order, so workers updating the same accounts at once lock them in the same order (no deadlocks on PostgreSQL).

``rollup_files`` would grow by a row per file: rows are pruned once every entry of their file has been
acknowledged (their last stream id is below the group's oldest pending entry, so no worker can be given them
again) and they are an hour old (a worker that stalled between its last ownership check and its counts still
finds its file named).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from distillguard.events.rollups import ERROR_FROM, HOUR_US, MINUTE_US, REFUSED
from distillguard.ingest.archive import file_range
from distillguard.store.chunks import chunks
from distillguard.store.schema import account_hours, account_traffic, rollup_files, traffic_minutes
from distillguard.timefmt import utcnow

log = logging.getLogger(__name__)

# The archive columns the rollups are computed from.
COLUMNS = ("stream_id", "ts", "account_id", "status", "prompt_tokens", "completion_tokens")
COUNTS = ("calls", "errors", "refused", "prompt_tokens", "completion_tokens")
# A counted file's row is kept at least this long, whatever the stream says (see the module's docstring).
KEEP_FILES = timedelta(hours=1)
_ZERO = pa.scalar(0, pa.int64())


@dataclass(frozen=True, slots=True)
class Increments:
    """One archive file's counts, aggregated: rows of ``traffic_minutes`` (``minute_us`` and :data:`COUNTS`), of
    ``account_traffic`` (``account_id``, :data:`COUNTS`, ``first_us``, ``last_us``) and of ``account_hours``
    (``account_id``, ``hour_us``, :data:`COUNTS`, ``first_ms``, ``last_ms``), as tuples in key order."""

    events: int
    minutes: list[tuple[Any, ...]]
    accounts: list[tuple[Any, ...]]
    hours: list[tuple[Any, ...]]


def refused(status: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """1 for each call refused (403, 429), else 0 (as int64)."""
    flags = pc.is_in(status, value_set=pa.array(sorted(REFUSED), status.type))
    return pc.fill_null(pc.cast(flags, pa.int64()), _ZERO)


def tokens(table: pa.Table, column: str) -> pa.ChunkedArray:
    """A token count column with its nulls as 0."""
    return pc.fill_null(table.column(column), _ZERO)


def _tuples(table: pa.Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table.column(name).to_pylist() for name in columns), strict=True))


def increments(table: pa.Table) -> Increments:
    """The counts of ``table`` (archive rows; at least :data:`COLUMNS`), per minute and per account, in key order."""
    if table.num_rows == 0:
        return Increments(0, [], [], [])
    ts = pc.cast(table.column("ts"), pa.int64())
    status = table.column("status")
    rows = pa.table(
        {
            "minute_us": pc.subtract(ts, pc.modulo(ts, MINUTE_US)),
            "hour_us": pc.subtract(ts, pc.modulo(ts, HOUR_US)),
            "append_ms": pc.cast(
                pc.list_element(pc.split_pattern(table.column("stream_id"), "-", max_splits=1), 0), pa.int64()
            ),
            "ts_us": ts,
            "account_id": table.column("account_id"),
            "errors": pc.fill_null(pc.cast(pc.greater_equal(status, ERROR_FROM), pa.int64()), _ZERO),
            "refused": refused(status),
            "prompt_tokens": tokens(table, "prompt_tokens"),
            "completion_tokens": tokens(table, "completion_tokens"),
        }
    )
    sums = [(name, "sum") for name in COUNTS[1:]]
    counts = ["ts_us_count", *(f"{name}_sum" for name in COUNTS[1:])]
    per_minute = rows.group_by("minute_us").aggregate([("ts_us", "count"), *sums]).sort_by("minute_us")
    per_account = (
        rows.group_by("account_id")
        .aggregate([("ts_us", "count"), *sums, ("ts_us", "min"), ("ts_us", "max")])
        .sort_by("account_id")
    )
    per_hour = (
        rows.group_by(["account_id", "hour_us"])
        .aggregate([("ts_us", "count"), *sums, ("append_ms", "min"), ("append_ms", "max")])
        .sort_by([("account_id", "ascending"), ("hour_us", "ascending")])
    )
    return Increments(
        table.num_rows,
        _tuples(per_minute, ["minute_us", *counts]),
        _tuples(per_account, ["account_id", *counts, "ts_us_min", "ts_us_max"]),
        _tuples(per_hour, ["account_id", "hour_us", *counts, "append_ms_min", "append_ms_max"]),
    )


def file_key(root: Path, path: Path) -> str:
    """A part file's name in ``rollup_files``: its path below the archive's root."""
    return path.relative_to(root).as_posix()


# Each rollup table: its key, and the columns that widen (earliest, latest) rather than add up.
_LAYOUT: dict[str, tuple[tuple[str, ...], str | None, str | None]] = {
    traffic_minutes.name: (("minute_us",), None, None),
    account_traffic.name: (("account_id",), "first_us", "last_us"),
    account_hours.name: (("account_id", "hour_us"), "first_ms", "last_ms"),
}


@cache
def _upsert_sql(dialect: str, table: str) -> str:
    """``INSERT … ON CONFLICT DO UPDATE`` adding a row of :class:`Increments` to ``table``'s counters (and
    widening the first/last call), in the driver's own placeholders: the driver runs it for every row of a batch
    (SQLAlchemy's per-row parameter handling cost more than the database's work)."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"the state store runs on SQLite or PostgreSQL, not {dialect}")
    key, first, last = _LAYOUT[table]
    names = [*key, *COUNTS, *(c for c in (first, last) if c)]
    mark = "?" if dialect == "sqlite" else "%s"
    low, high = ("min", "max") if dialect == "sqlite" else ("least", "greatest")
    changes = [f"{c} = {table}.{c} + excluded.{c}" for c in COUNTS]
    if first and last:
        changes += [f"{first} = {low}({table}.{first}, excluded.{first})"]
        changes += [f"{last} = {high}({table}.{last}, excluded.{last})"]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))}) "  # noqa: S608 - constants
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(changes)}"
    )


def _add(conn: Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add ``rows`` to ``table``'s counters, inserting the keys not there yet."""
    if rows:
        conn.exec_driver_sql(_upsert_sql(conn.dialect.name, table), list(rows))


class StoreRollups:
    """The rollup tables of the state store, as one group's ingest workers keep them."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root

    def apply(self, path: Path, table: pa.Table) -> bool:
        """Count an archive file (its rows: ``table``) into the rollups, unless it was counted already.

        One transaction: the file's row first (a second worker counting the same file waits on it, then fails and
        adds nothing), then the minutes, the accounts and their hours, each in key order. True if the counts were
        added."""
        bounds = file_range(path.name)
        if bounds is None:
            raise ValueError(f"not an archive part file: {path}")
        counts = increments(table)
        last_ms, last_seq = bounds[1]
        marker = {
            "path": file_key(self.root, path),
            "last_ms": last_ms,
            "last_seq": last_seq,
            "events": counts.events,
            "applied_at": utcnow(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(rollup_files.insert().values(marker))
                _add(conn, traffic_minutes.name, counts.minutes)
                _add(conn, account_traffic.name, counts.accounts)
                _add(conn, account_hours.name, counts.hours)
        except IntegrityError:
            return False  # counted already (by an earlier attempt, or by another worker just now)
        return True

    def unapplied(self, paths: Sequence[Path]) -> list[Path]:
        """Those of ``paths`` (archive files) not counted yet."""
        keys = {file_key(self.root, p): p for p in paths}
        counted: set[str] = set()
        with self.engine.connect() as conn:
            for part in chunks(list(keys)):
                counted.update(conn.execute(select(rollup_files.c.path).where(rollup_files.c.path.in_(part))).scalars())
        return [p for k, p in keys.items() if k not in counted]

    def reconcile(self, paths: Sequence[Path]) -> int:
        """Count those of ``paths`` that are archived but not counted (a crash between publishing and counting);
        how many were counted now."""
        counted = 0
        for path in self.unapplied(paths):
            if self.apply(path, pq.read_table(path, columns=list(COLUMNS))):
                log.info("counted archive file %s into the rollups (published before a crash, not counted)", path)
                counted += 1
        return counted

    def prune(self, below: tuple[int, int]) -> int:
        """Forget counted files whose entries all lie below stream id ``below`` (none can be delivered again) and
        that were counted more than :data:`KEEP_FILES` ago; how many rows went."""
        ms, seq = below
        c = rollup_files.c
        older = or_(c.last_ms < ms, and_(c.last_ms == ms, c.last_seq < seq))
        with self.engine.begin() as conn:
            result = conn.execute(delete(rollup_files).where(older, c.applied_at < utcnow() - KEEP_FILES))
        return int(result.rowcount or 0)
