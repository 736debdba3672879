"""The shared deployment's view of its events (``[events] sink = "redis"``, :mod:`.logview`): traffic from the
rollups the ingest workers keep in the state store (``traffic_minutes``, ``account_traffic``, ``account_hours``:
ingest/rollups.py), an account's calls and a call by its id from the Parquet archive they write
(``[events] archive_dir``, :mod:`.archive_calls`).

The rollups are read like the event log's, on their primary keys and indexes, in the store's database (SQLite or
PostgreSQL). An account's calls are looked for only where ``account_hours`` says it called (the hours, and in each
the files appended while it did), newest first; each read of the archive is bounded (:data:`PAGE_BOUND` for the
console's pages, :data:`EXPORT_BOUND` for evidence packs, which are exported offline and read far more). Traffic over
time in buckets of an hour or more comes from ``account_hours`` alone; narrower buckets (a span of at most 60 hours)
from the archive.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.sql.elements import ColumnElement

from distillguard.events.archive_calls import ArchiveCalls, Bound, Hour
from distillguard.events.logview import (
    EXCHANGE_COLUMNS,
    SIGNAL_ROW_COLUMNS,
    TRAFFIC_COLUMNS,
    Bucket,
    Calls,
    EventLogView,
    Series,
    SeriesPoint,
    Traffic,
)
from distillguard.events.rollups import HOUR_US
from distillguard.store.chunks import chunks
from distillguard.store.schema import account_hours, account_traffic, traffic_minutes

# One console page's archive read: under 200 ms on the reference machine whatever the archive (a file costs 0.5 to
# 1.3 ms to open, search and read rows from, a row ~0.2 µs to compare; docs/console.md, "Performance").
PAGE_BOUND = Bound(files=150, rows=1_000_000)
# An evidence pack's: every file of a member's span on any archive this project has measured.
EXPORT_BOUND = Bound(files=200_000, rows=500_000_000)

_T = account_traffic.c
_H = account_hours.c
# Hours of an account read from the store at a time (a read usually needs the first page only).
HOURS_PAGE = 256


def _order(sort: str) -> ColumnElement[Any]:
    if sort == "calls":
        return _T.calls
    if sort == "tokens":
        return _T.prompt_tokens + _T.completion_tokens
    if sort == "last_seen":
        return _T.last_us
    raise ValueError(f"unknown traffic sort {sort!r}")


def _within(first_us: int, last_us: int) -> ColumnElement[bool]:
    """The account hours that meet [first_us, last_us]."""
    return _H.hour_us.between(first_us - first_us % HOUR_US, last_us)


class SharedEventLog(EventLogView):
    def __init__(self, engine: Engine, archive_dir: Path | None, bound: Bound = PAGE_BOUND) -> None:
        self.engine = engine
        self.archive = ArchiveCalls(archive_dir, bound) if archive_dir is not None else None
        where = (
            f"the archive at {archive_dir}" if archive_dir is not None else "no archive ([events] archive_dir unset)"
        )
        self.source = f"the state store's traffic rollups (kept by `distillguard ingest`) and {where}"

    @property
    def available(self) -> bool:
        return True  # the store always has the rollup tables (empty until a worker keeps them)

    @property
    def calls_available(self) -> bool:
        return self.archive is not None and self.archive.root.is_dir()

    def close(self) -> None:
        pass  # the engine is the store's, closed with it

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # traffic ----------------------------------------------------------------------------------------------------
    def buckets(self, since_us: int, bucket_us: int) -> list[Bucket]:
        m = traffic_minutes.c
        start = (m.minute_us - m.minute_us % bucket_us).label("start")
        query = (
            select(
                start,
                func.sum(m.calls),
                func.sum(m.errors),
                func.sum(m.refused),
                func.sum(m.prompt_tokens),
                func.sum(m.completion_tokens),
            )
            .where(m.minute_us >= since_us - since_us % bucket_us)
            .group_by(start)
            .order_by(start)
        )
        return [Bucket(*(int(v) for v in row)) for row in self._rows(query)]

    def traffic(self, ids: Sequence[str]) -> dict[str, Traffic]:
        out: dict[str, Traffic] = {}
        columns = [_T[name] for name in TRAFFIC_COLUMNS]
        for chunk in chunks(ids):
            for account_id, *values in self._rows(select(_T.account_id, *columns).where(_T.account_id.in_(chunk))):
                out[account_id] = Traffic(*(int(v) for v in values))
        return out

    def ordered(self, sort: str, desc: bool, offset: int, limit: int) -> list[str]:
        key = _order(sort)
        query = (
            select(_T.account_id).order_by(key.desc() if desc else key.asc(), _T.account_id).limit(limit).offset(offset)
        )
        return [r[0] for r in self._rows(query)]

    def sort_keys(self, sort: str, ids: Sequence[str]) -> dict[str, int]:
        key = _order(sort)
        out: dict[str, int] = {}
        for chunk in chunks(ids):
            out.update((a, int(v)) for a, v in self._rows(select(_T.account_id, key).where(_T.account_id.in_(chunk))))
        return out

    def count_accounts(self) -> int:
        return int(self._rows(select(func.count()).select_from(account_traffic))[0][0])

    def account_ids(self) -> list[str]:
        return [r[0] for r in self._rows(select(_T.account_id))]

    def ids_containing(self, text: str, limit: int) -> list[str]:
        query = select(_T.account_id).where(func.lower(_T.account_id).contains(text.lower(), autoescape=True))
        return [r[0] for r in self._rows(query.limit(limit))]

    def _hours(self, account_id: str) -> Iterator[Hour]:
        """Where the account's calls are, newest hour first (read from the store a page at a time, as needed)."""
        before: int | None = None
        while True:
            query = select(_H.hour_us, _H.first_ms, _H.last_ms).where(_H.account_id == account_id)
            if before is not None:
                query = query.where(_H.hour_us < before)
            rows = self._rows(query.order_by(_H.hour_us.desc()).limit(HOURS_PAGE))
            for hour_us, first_ms, last_ms in rows:
                yield Hour(int(hour_us), int(first_ms), int(last_ms))
            if len(rows) < HOURS_PAGE:
                return
            before = int(rows[-1][0])

    def _members_hours(self, ids: Sequence[str], first_us: int, last_us: int) -> list[Hour]:
        """Where any of the accounts called in [first_us, last_us], newest hour first."""
        merged: dict[int, Hour] = {}
        for chunk in chunks(ids):
            query = (
                select(_H.hour_us, func.min(_H.first_ms), func.max(_H.last_ms))
                .where(_H.account_id.in_(chunk), _within(first_us, last_us))
                .group_by(_H.hour_us)
            )
            for hour_us, first_ms, last_ms in self._rows(query):
                seen = merged.get(int(hour_us))
                low = int(first_ms) if seen is None else min(seen.first_ms, int(first_ms))
                high = int(last_ms) if seen is None else max(seen.last_ms, int(last_ms))
                merged[int(hour_us)] = Hour(int(hour_us), low, high)
        return sorted(merged.values(), key=lambda h: h.hour_us, reverse=True)

    def series(self, ids: Sequence[str], first_us: int, last_us: int, bucket_us: int) -> Series:
        if bucket_us % HOUR_US == 0:
            return self._hourly_series(ids, first_us, last_us, bucket_us)
        if self.archive is None:
            return Series([], complete=False)
        return self.archive.series(ids, self._members_hours(ids, first_us, last_us), first_us, last_us, bucket_us)

    def _hourly_series(self, ids: Sequence[str], first_us: int, last_us: int, bucket_us: int) -> Series:
        """Buckets of whole hours, from ``account_hours`` (no archive read)."""
        start = (_H.hour_us - _H.hour_us % bucket_us).label("start")
        points = []
        for chunk in chunks(ids):
            query = (
                select(
                    _H.account_id,
                    start,
                    func.sum(_H.calls),
                    func.sum(_H.prompt_tokens + _H.completion_tokens),
                    func.sum(_H.refused),
                )
                .where(_H.account_id.in_(chunk), _within(first_us, last_us))
                .group_by(_H.account_id, start)
            )
            points += [SeriesPoint(a, int(s), int(c), int(t), int(r)) for a, s, c, t, r in self._rows(query)]
        return Series(points)

    # calls ------------------------------------------------------------------------------------------------------
    def calls(self, account_id: str, limit: int, columns: Sequence[str], among: Collection[str] | None = None) -> Calls:
        if self.archive is None or limit <= 0:
            return Calls()
        return self.archive.calls(account_id, self._hours(account_id), limit, columns, among)

    def account_calls(self, account_id: str, exchanges: int, signals: int) -> tuple[Calls, Calls]:
        """One search of the archive for both: the latest ``max(exchanges, signals)`` calls, of which the signals
        of the latest ``signals`` and the text of the latest ``exchanges`` are read."""
        if self.archive is None:
            return Calls(), Calls()
        found = self.archive.find(account_id, self._hours(account_id), max(exchanges, signals))
        return (
            Calls(found.read(EXCHANGE_COLUMNS, exchanges), found.complete),
            Calls(found.read(SIGNAL_ROW_COLUMNS, signals), found.complete),
        )

    def event(self, event_id: str) -> dict[str, Any] | None:
        if self.archive is None:
            return None
        return self.archive.event(event_id, ["account_id", *EXCHANGE_COLUMNS], time.time_ns() // 1000)
