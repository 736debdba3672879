"""The embedded deployment's view of its events: the gateway's event log ``events.db`` (:mod:`.logview`).

No read scans the events table: traffic comes from ``traffic_minutes`` and ``account_traffic`` (kept by the sink,
see events/rollups.py), an account's calls from the ``(account_id, ts_us)`` index with a LIMIT, a call from the
unique event-id index. Each thread that reads (the console runs its reads in Starlette's thread pool) gets its own
connection, opened read-only, so a reader can never write to the log or hold its write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from distillguard.events.logview import (
    EXCHANGE_COLUMNS,
    TRAFFIC_COLUMNS,
    Bucket,
    Calls,
    EventLogView,
    Series,
    SeriesPoint,
    Traffic,
    check_columns,
)
from distillguard.events.rollups import REFUSED
from distillguard.store.chunks import chunks

# The traffic sort keys as SQL over account_traffic (constants, never user input).
_ORDER = {"calls": "calls", "tokens": "prompt_tokens + completion_tokens", "last_seen": "last_us"}
_REFUSED = ", ".join(str(s) for s in sorted(REFUSED))


def _in(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


class SQLiteEventLogView(EventLogView):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = f"the event log at {path}"
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

    def _dicts(self, sql: str, params: Iterable[Any]) -> list[dict[str, Any]]:
        conn = self._conn()
        if conn is None:
            return []
        cursor = conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _present(self, columns: Sequence[str]) -> tuple[list[str], list[str]]:
        """``columns`` the events table has, and those it lacks (signals on a log older than them)."""
        conn = self._conn()
        have = {row[1] for row in conn.execute("PRAGMA table_info(events)")} if conn is not None else set()
        check_columns(columns)
        return [c for c in columns if c in have], [c for c in columns if c not in have]

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    # traffic ----------------------------------------------------------------------------------------------------
    def buckets(self, since_us: int, bucket_us: int) -> list[Bucket]:
        rows = self._rows(
            "SELECT minute_us - minute_us % ?, sum(calls), sum(errors), sum(refused), sum(prompt_tokens), "
            "sum(completion_tokens) FROM traffic_minutes WHERE minute_us >= ? GROUP BY 1 ORDER BY 1",
            (bucket_us, since_us - since_us % bucket_us),
        )
        return [Bucket(*(int(v) for v in row)) for row in rows]

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
        key = _ORDER[sort]
        direction = "DESC" if desc else "ASC"
        rows = self._rows(
            f"SELECT account_id FROM account_traffic ORDER BY {key} {direction}, account_id LIMIT ? OFFSET ?",  # noqa: S608
            (limit, offset),
        )
        return [r[0] for r in rows]

    def sort_keys(self, sort: str, ids: Sequence[str]) -> dict[str, int]:
        key = _ORDER[sort]
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
        return [r[0] for r in self._rows("SELECT account_id FROM account_traffic")]

    def ids_containing(self, text: str, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT account_id FROM account_traffic WHERE instr(lower(account_id), ?) > 0 LIMIT ?",
            (text.lower(), limit),
        )
        return [r[0] for r in rows]

    def series(self, ids: Sequence[str], first_us: int, last_us: int, bucket_us: int) -> Series:
        """From the events themselves, through the ``(account_id, ts_us)`` index."""
        points = []
        for part in chunks(ids):
            query = (
                f"SELECT account_id, ts_us - ts_us % {int(bucket_us)}, count(*), "  # noqa: S608 - an int
                "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0), "
                f"sum(status IN ({_REFUSED})) FROM events WHERE account_id IN ({_in(part)}) AND ts_us BETWEEN ? AND ? "
                "GROUP BY 1, 2"
            )
            points += [SeriesPoint(*row) for row in self._rows(query, [*part, first_us, last_us])]
        return Series(points)

    # calls ------------------------------------------------------------------------------------------------------
    def calls(self, account_id: str, limit: int, columns: Sequence[str], among: Collection[str] | None = None) -> Calls:
        present, missing = self._present(columns)
        if limit <= 0 or not present:
            return Calls()
        select = ", ".join(present)
        if among is None:
            query = f"SELECT {select} FROM events WHERE account_id = ? ORDER BY ts_us DESC LIMIT ?"  # noqa: S608
            rows = self._dicts(query, (account_id, limit))
        else:
            rows = []
            for part in chunks(list(among)):
                query = (
                    f"SELECT {select} FROM events WHERE account_id = ? "  # noqa: S608 - fixed names
                    f"AND event_id IN ({_in(part)}) ORDER BY ts_us DESC LIMIT ?"
                )
                rows += self._dicts(query, (account_id, *part, limit))
            if "ts_us" in present:
                rows.sort(key=lambda r: r["ts_us"], reverse=True)
            rows = rows[:limit]
        for row in rows:
            row.update(dict.fromkeys(missing))
        return Calls(rows)

    def event(self, event_id: str) -> dict[str, Any] | None:
        rows = self._dicts(
            f"SELECT account_id, {', '.join(EXCHANGE_COLUMNS)} FROM events WHERE event_id = ?",  # noqa: S608
            (event_id,),
        )
        return rows[0] if rows else None
