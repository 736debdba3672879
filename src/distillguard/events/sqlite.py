"""The embedded event log: SQLite in WAL mode, written in batches by one background thread.

The request path only appends to a deque (thread-safe, no lock, no I/O). The writer wakes every
``flush_interval_ms`` (or as soon as ``batch_size`` events wait), inserts them in one transaction and commits.
A graceful stop drains the deque; ``kill -9`` loses at most the events of the last flush interval plus the batch
being written (docs/events.md, tested in tests/e2e/test_durability.py).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from distillguard.config import EventsConfig
from distillguard.events import rollups
from distillguard.events.schema import SCHEMA_VERSION, Event
from distillguard.events.signals import (
    SIGNAL_COLUMNS,
    SIGNAL_SQL_TYPES,
    SIGNALS_VERSION,
    RequestSignals,
    as_row,
    from_row,
)

log = logging.getLogger(__name__)

EVENTS_DB = "events.db"

COLUMNS = (
    "event_id",
    "ts_us",
    "account_id",
    "key_id",
    "org_id",
    "client_ip",
    "user_agent",
    "client_fingerprint",
    "client_tls",
    "endpoint",
    "model",
    "upstream",
    "stream",
    "request",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "text",
    "text_sha256",
    "latency_ms",
    "ttft_ms",
    "error_code",
    "extra",
    "schema_version",
    "signals_version",
    *(f"sig_{name}" for name in SIGNAL_COLUMNS),
)
_NO_SIGNALS = (None,) * (1 + len(SIGNAL_COLUMNS))

_DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    key_id TEXT,
    org_id TEXT,
    client_ip TEXT,
    user_agent TEXT,
    endpoint TEXT NOT NULL,
    model TEXT,
    upstream TEXT,
    stream INTEGER NOT NULL,
    request BLOB NOT NULL,
    status INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    finish_reason TEXT,
    text TEXT,
    text_sha256 TEXT,
    latency_ms REAL,
    ttft_ms REAL,
    error_code TEXT,
    extra BLOB,
    schema_version INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_events_id ON events(event_id);
CREATE INDEX IF NOT EXISTS ix_events_ts ON events(ts_us);
CREATE INDEX IF NOT EXISTS ix_events_account_ts ON events(account_id, ts_us);
"""
# Columns added after the first release, with their types: ``connect`` adds the missing ones to an older
# database (ALTER TABLE ADD COLUMN is instant in SQLite: old rows read NULL, i.e. "no signals stored").
_ADDED_COLUMNS: dict[str, str] = {
    "client_fingerprint": "TEXT",
    "client_tls": "TEXT",
    "signals_version": "INTEGER",
    **{f"sig_{name}": sql_type for name, sql_type in SIGNAL_SQL_TYPES.items()},
}

_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - fixed column names


def _row(e: Event) -> tuple[Any, ...]:
    return (
        e.event_id,
        e.ts_us,
        e.account_id,
        e.key_id,
        e.org_id,
        e.client_ip,
        e.user_agent,
        e.client_fingerprint,
        e.client_tls,
        e.endpoint,
        e.model,
        e.upstream,
        int(e.stream),
        e.request_raw,
        e.status,
        e.prompt_tokens,
        e.completion_tokens,
        e.finish_reason,
        e.text,
        e.text_sha256,
        e.latency_ms,
        e.ttft_ms,
        e.error_code,
        orjson.dumps(e.extra) if e.extra else None,
        SCHEMA_VERSION,
        *((SIGNALS_VERSION, *as_row(e.signals)) if e.signals is not None else _NO_SIGNALS),
    )


def _event(row: sqlite3.Row, columns: frozenset[str]) -> Event:
    return Event(
        event_id=row["event_id"],
        ts_us=row["ts_us"],
        endpoint=row["endpoint"],
        request_raw=bytes(row["request"]),
        account_id=row["account_id"],
        key_id=row["key_id"],
        org_id=row["org_id"],
        client_ip=row["client_ip"],
        user_agent=row["user_agent"],
        client_fingerprint=row["client_fingerprint"] if "client_fingerprint" in columns else None,
        client_tls=row["client_tls"] if "client_tls" in columns else None,
        model=row["model"],
        upstream=row["upstream"],
        stream=bool(row["stream"]),
        status=row["status"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
        text=row["text"],
        text_sha256=row["text_sha256"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        error_code=row["error_code"],
        extra=orjson.loads(row["extra"]) if row["extra"] else {},
        signals=_signals(row) if "signals_version" in columns else None,
    )


def _signals(row: sqlite3.Row) -> RequestSignals | None:
    if row["signals_version"] != SIGNALS_VERSION:
        return None  # none stored, or computed by another version of the extractor
    return from_row(tuple(row[f"sig_{name}"] for name in SIGNAL_COLUMNS))


def store(conn: sqlite3.Connection, batch: list[Event]) -> None:
    """Insert a batch of events and count them into the rollups (inside the caller's transaction). An event id
    already stored is skipped, and not counted again: the rare batch that holds one (a retried import) is
    filtered first."""
    conn.execute("SAVEPOINT batch")
    before = conn.total_changes
    conn.executemany(_INSERT, [_row(e) for e in batch])
    if conn.total_changes - before == len(batch):
        conn.execute("RELEASE batch")
        rollups.add(conn, batch)
        return
    conn.execute("ROLLBACK TO batch")
    conn.execute("RELEASE batch")
    ids = list({e.event_id for e in batch})
    stored: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        query = f"SELECT event_id FROM events WHERE event_id IN ({', '.join('?' * len(chunk))})"  # noqa: S608
        stored.update(row[0] for row in conn.execute(query, chunk))
    fresh: dict[str, Event] = {}
    for e in batch:
        if e.event_id not in stored and e.event_id not in fresh:
            fresh[e.event_id] = e
    conn.executemany(_INSERT, [_row(e) for e in fresh.values()])
    rollups.add(conn, list(fresh.values()))


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Add the columns a database created by an earlier release lacks; returns their names."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    added = [name for name in _ADDED_COLUMNS if name not in present]
    for name in added:
        conn.execute(f"ALTER TABLE events ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
    if added:
        log.info("event log migrated", extra={"added_columns": added})
    return added


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed batch survives a process crash (kill -9); only an OS crash or power
    # loss can take back the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(_DDL)
    migrate(conn)
    rollups.ensure(conn)
    return conn


class SQLiteEventLog:
    """Event sink and source over ``data_dir/events.db``."""

    def __init__(self, data_dir: Path, config: EventsConfig) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / EVENTS_DB
        self._config = config
        self._pending: deque[Event] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # One writer at a time: flush() from a caller must wait for a batch the writer thread has already taken off the
        # queue, or it would return before that batch is readable (and two threads would share the connection).
        self._write_lock = threading.Lock()
        self._conn = connect(self.path)
        self.written = 0
        self.write_errors = 0

    # sink -------------------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        self._pending.append(event)
        if len(self._pending) >= self._config.batch_size:
            self._wake.set()

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def saturated(self) -> bool:
        return len(self._pending) >= self._config.queue_max

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="distillguard-event-writer", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._flush()
        self._conn.close()

    def flush(self) -> None:
        """Write what is queued now (for tools and tests; the server relies on the writer thread)."""
        self._flush()

    def _run(self) -> None:
        interval = self._config.flush_interval_ms / 1000
        while not self._stopping:
            self._wake.wait(interval)
            self._wake.clear()
            self._flush()

    def _flush(self) -> None:
        with self._write_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        batch_size = self._config.batch_size
        pending = self._pending
        while pending:
            batch: list[Event] = []
            while pending and len(batch) < batch_size:
                batch.append(pending.popleft())
            try:
                self._conn.execute("BEGIN")
                store(self._conn, batch)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                # Put the batch back (in order) so nothing is lost; try again next interval.
                self.write_errors += 1
                log.exception("event batch write failed; %d events kept for retry", len(batch))
                pending.extendleft(reversed(batch))
                return
            self.written += len(batch)

    # source -----------------------------------------------------------------------------------------
    def iter_events(self, since_us: int | None = None, until_us: int | None = None) -> Iterator[Event]:
        yield from iter_events(self.path, since_us, until_us)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[tuple[sqlite3.Connection, frozenset[str]]]:
    """A read-only connection to an event database, and the columns its events table has (a database of an earlier
    release, opened read-only, lacks the columns added since: nothing was stored in them)."""
    if not path.exists():
        raise FileNotFoundError(f"no event log at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn, frozenset(row[1] for row in conn.execute("PRAGMA table_info(events)"))
    finally:
        conn.close()


def _window(since_us: int | None, until_us: int | None) -> tuple[str, list[int]]:
    clauses, params = [], []
    if since_us is not None:
        clauses.append("ts_us >= ?")
        params.append(since_us)
    if until_us is not None:
        clauses.append("ts_us < ?")
        params.append(until_us)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def iter_events(path: Path, since_us: int | None = None, until_us: int | None = None) -> Iterator[Event]:
    """Events of an event database in time order, read on a connection of its own."""
    with _reading(path) as (conn, columns):
        conn.row_factory = sqlite3.Row
        where, params = _window(since_us, until_us)
        for row in conn.execute(f"SELECT * FROM events {where} ORDER BY ts_us, rowid", params):  # noqa: S608
            yield _event(row, columns)


# What a replay of detection needs of each event (the clustering job, `clusters --data-dir`), in this order.
REPLAY_COLUMNS = (
    "ts_us", "account_id", "status", "prompt_tokens", "completion_tokens", "model",
    "client_ip", "user_agent", "client_fingerprint", "client_tls", "endpoint",
)  # fmt: skip


def iter_replay(
    path: Path, since_us: int | None = None
) -> Iterator[tuple[tuple[Any, ...], RequestSignals | None, bytes | None]]:
    """Per event in time order: its ``REPLAY_COLUMNS``, its stored signals (None when there are none of the current
    version) and, only then, its request body to compute them from. Neither the answer's text nor a request whose
    signals are stored is read: a replay pass costs a fraction of :func:`iter_events`'."""
    with _reading(path) as (conn, columns):
        fields = ", ".join(c if c in columns else "NULL" for c in REPLAY_COLUMNS)
        if "signals_version" in columns:
            current = f"signals_version IS {SIGNALS_VERSION}"
            stored = ", ".join(f"sig_{name}" for name in SIGNAL_COLUMNS)
            select = f"{fields}, {current}, CASE WHEN {current} THEN NULL ELSE request END, {stored}"
        else:
            select = f"{fields}, 0, request"
        where, params = _window(since_us, None)
        n = len(REPLAY_COLUMNS)
        for row in conn.execute(f"SELECT {select} FROM events {where} ORDER BY ts_us, rowid", params):  # noqa: S608
            yield row[:n], from_row(row[n + 2 :]) if row[n] else None, row[n + 1]
