"""The console's read-only view of the event log (``events.db``): its rollups, and an account's recent calls.

Pages never scan the events table: traffic comes from ``traffic_minutes`` and ``account_traffic`` (kept by the
sink, see events/rollups.py), an account's calls from the ``(account_id, ts_us)`` index with a LIMIT. Each thread
that reads (the console runs its reads in Starlette's thread pool) gets its own connection, opened read-only, so
the console can never write to the log or hold its write lock. A deployment whose events go to a Redis stream has
no ``events.db``: every read answers empty and ``available`` says so.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.events.signals import SIGNAL_COLUMNS
from distillguard.store.chunks import chunks

TRAFFIC_COLUMNS = ("calls", "errors", "refused", "prompt_tokens", "completion_tokens", "first_us", "last_us")
# How the accounts table can order by traffic: SQL over account_traffic (constants, never user input).
TRAFFIC_ORDER = {
    "calls": "calls",
    "tokens": "prompt_tokens + completion_tokens",
    "last_seen": "last_us",
}
_EXCHANGE_COLUMNS = (
    "event_id, ts_us, endpoint, model, status, prompt_tokens, completion_tokens, finish_reason, text, text_sha256, "
    "latency_ms, error_code, client_ip, user_agent, key_id, request, extra"
)


@dataclass(frozen=True, slots=True)
class Traffic:
    calls: int = 0
    errors: int = 0
    refused: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_us: int | None = None
    last_us: int | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Bucket:
    start_us: int
    calls: int
    errors: int
    refused: int
    prompt_tokens: int
    completion_tokens: int


def _in(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


class EventLogReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []

    @property
    def available(self) -> bool:
        return self.path.exists()

    def _conn(self) -> sqlite3.Connection | None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                return None
            # check_same_thread off only so that close() can close every thread's connection at shutdown.
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=2000")
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn()
        if conn is None:
            return []
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:
            # A log made before the rollups existed that no writer has opened since: nothing to show yet.
            if "no such table" in str(exc):
                return []
            raise

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    # traffic over time --------------------------------------------------------------------------------
    def buckets(self, since_us: int, bucket_us: int) -> list[Bucket]:
        """Calls, errors, refusals and tokens per ``bucket_us`` (a multiple of a minute) from ``since_us`` on."""
        rows = self._rows(
            "SELECT minute_us - minute_us % ?, sum(calls), sum(errors), sum(refused), sum(prompt_tokens), "
            "sum(completion_tokens) FROM traffic_minutes WHERE minute_us >= ? GROUP BY 1 ORDER BY 1",
            (bucket_us, since_us - since_us % bucket_us),
        )
        return [Bucket(*(int(v) for v in row)) for row in rows]

    # per account ----------------------------------------------------------------------------------------
    def traffic(self, ids: Sequence[str]) -> dict[str, Traffic]:
        out: dict[str, Traffic] = {}
        for chunk in chunks(ids):
            rows = self._rows(
                f"SELECT account_id, {', '.join(TRAFFIC_COLUMNS)} FROM account_traffic "  # noqa: S608
                f"WHERE account_id IN ({_in(chunk)})",
                chunk,
            )
            for account_id, *values in rows:
                out[account_id] = Traffic(*values)
        return out

    def ordered(self, sort: str, desc: bool, offset: int, limit: int) -> list[str]:
        """Account ids by a traffic key (ties by id), one page."""
        key = TRAFFIC_ORDER[sort]
        direction = "DESC" if desc else "ASC"
        rows = self._rows(
            f"SELECT account_id FROM account_traffic ORDER BY {key} {direction}, account_id LIMIT ? OFFSET ?",  # noqa: S608
            (limit, offset),
        )
        return [r[0] for r in rows]

    def sort_keys(self, sort: str, ids: Sequence[str]) -> dict[str, int]:
        """The traffic sort key of each of ``ids`` that has traffic."""
        key = TRAFFIC_ORDER[sort]
        out: dict[str, int] = {}
        for chunk in chunks(ids):
            sql = f"SELECT account_id, {key} FROM account_traffic WHERE account_id IN ({_in(chunk)})"  # noqa: S608
            rows = self._rows(sql, chunk)
            out.update((r[0], int(r[1])) for r in rows)
        return out

    def count_accounts(self) -> int:
        rows = self._rows("SELECT count(*) FROM account_traffic")
        return int(rows[0][0]) if rows else 0

    def account_ids(self) -> list[str]:
        """Every account with at least one call (a scan of the rollup's primary key)."""
        return [r[0] for r in self._rows("SELECT account_id FROM account_traffic")]

    def ids_containing(self, text: str, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT account_id FROM account_traffic WHERE instr(lower(account_id), ?) > 0 LIMIT ?",
            (text.lower(), limit),
        )
        return [r[0] for r in rows]

    def recent(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        """An account's latest calls, newest first, with what was asked and answered (as the log stored it)."""
        conn = self._conn()
        if conn is None:
            return []
        cursor = conn.execute(
            f"SELECT {_EXCHANGE_COLUMNS} FROM events WHERE account_id = ? ORDER BY ts_us DESC LIMIT ?",  # noqa: S608
            (account_id, limit),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def signal_rows(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        """The stored request signals of an account's latest calls, newest first (empty columns on older logs)."""
        conn = self._conn()
        if conn is None:
            return []
        present = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        signals = [f"sig_{name}" for name in SIGNAL_COLUMNS if f"sig_{name}" in present]
        columns = ", ".join(["event_id", "ts_us", "status", *signals])
        cursor = conn.execute(
            f"SELECT {columns} FROM events WHERE account_id = ? ORDER BY ts_us DESC LIMIT ?",  # noqa: S608
            (account_id, limit),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def event(self, event_id: str) -> dict[str, Any] | None:
        conn = self._conn()
        if conn is None:
            return None
        cursor = conn.execute(
            f"SELECT account_id, {_EXCHANGE_COLUMNS} FROM events WHERE event_id = ?",  # noqa: S608
            (event_id,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))
