"""The accounts table: every account the deployment knows (``accounts``, ``scores``) or has seen calling
(``account_traffic`` in the event log), sorted and filtered, one page at a time.

Two databases hold the columns: the state store (tier, org, risk, verdict, standing) and the event log (calls,
tokens, last call). A page is sorted in the database that owns the sort key; the other side is fetched for that
page's ids only. Accounts without a value for the sort key (never scored, never called, or unknown to the store)
follow, by id, so every account is on some page.

Filters (verdict, tier, minimum risk, text) are the store's, except that the text also matches the ids of accounts
only the event log knows. Sorted by a key of the store, a page is one SQL query with the filter in it. Sorted by a
key of the event log (or searched by text), a filter first lists its candidates, driven by its most selective
condition; up to ``CANDIDATES`` of them are sorted in memory. Beyond that the filter lets many accounts through,
and the page walks the event log in sort order, reading the store's rows of each chunk by primary key and keeping
those that pass (:meth:`AccountFilter.matches`, the filter's twin in Python): a page fills within a chunk or two.

A deep page costs what the database pays for its OFFSET (the last page of 100,000 accounts by risk: about half a
second on SQLite); the table offers Previous and Next, not jumps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Engine, Select, and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from distillguard.events.logview import TRAFFIC_ORDER, EventLogView, Traffic
from distillguard.respond.policy import LEVELS
from distillguard.store.chunks import chunks
from distillguard.store.schema import accounts, scores, standings
from distillguard.timefmt import as_utc

CANDIDATES = 20_000
WALK_CHUNK = 2000
STATE_SORTS = ("risk", "verdict")
SORTS = (*STATE_SORTS, *TRAFFIC_ORDER)


@dataclass
class AccountRow:
    account_id: str
    known: bool = False  # has a row in `accounts`
    org_id: str | None = None
    tier: str | None = None  # the account's tier, or the default one when it has none
    verified: bool = False
    risk: float | None = None
    verdict: str | None = None
    scored_at: datetime | None = None
    level: str | None = None
    pending: str | None = None
    confirmed: bool = False
    case_id: str | None = None
    traffic: Traffic = field(default_factory=Traffic)


@dataclass(frozen=True)
class AccountFilter:
    verdict: str | None = None
    tier: str | None = None
    min_risk: float | None = None
    q: str | None = None

    @property
    def state_only(self) -> bool:
        """Whether only accounts with rows in the store can match (the text alone also matches log-only ids)."""
        return self.verdict is not None or self.tier is not None or self.min_risk is not None

    @property
    def empty(self) -> bool:
        return not self.state_only and not self.q

    def matches(self, row: AccountRow) -> bool:
        """The filter over one row of the store (what ``_conditions`` says in SQL)."""
        if self.verdict is not None and row.verdict != self.verdict:
            return False
        if self.min_risk is not None and (row.risk is None or row.risk < self.min_risk):
            return False
        if self.tier is not None and (not row.known or row.tier != self.tier):
            return False
        if self.q:
            text = self.q.lower()
            return text in row.account_id.lower() or (row.org_id is not None and text in row.org_id.lower())
        return True


@dataclass(frozen=True)
class AccountQuery:
    filter: AccountFilter = field(default_factory=AccountFilter)
    sort: str = "risk"
    desc: bool = True
    offset: int = 0
    limit: int = 50


@dataclass
class AccountPage:
    rows: list[AccountRow]
    query: AccountQuery
    has_next: bool
    # The number of matching accounts when the page had to count them anyway, else None.
    total: int | None = None


# state-side SQL --------------------------------------------------------------------------------------------------
def _conditions(f: AccountFilter, default_tier: str, scored: bool) -> list[ColumnElement[bool]]:
    """The filter as SQL over ``scores ⟕ accounts`` (``scored``) or ``accounts ⟕ scores``."""
    ident = scores.c.account_id if scored else accounts.c.account_id
    out: list[ColumnElement[bool]] = []
    if f.verdict is not None:
        out.append(scores.c.verdict == f.verdict)
    if f.min_risk is not None:
        out.append(scores.c.risk >= f.min_risk)
    if f.tier is not None:
        tier = accounts.c.tier == f.tier
        if f.tier == default_tier:  # an account without a tier has the default one
            tier = or_(tier, and_(accounts.c.account_id.is_not(None), accounts.c.tier.is_(None)))
        out.append(tier)
    if f.q:
        out.append(or_(ident.icontains(f.q, autoescape=True), accounts.c.org_id.icontains(f.q, autoescape=True)))
    return out


def _verdict_rank() -> ColumnElement[int]:
    return case({level: rank for rank, level in enumerate(LEVELS)}, value=scores.c.verdict, else_=-1)


def _scored(f: AccountFilter, default_tier: str) -> Select[Any]:
    join = scores.outerjoin(accounts, accounts.c.account_id == scores.c.account_id)
    return select(scores.c.account_id).select_from(join).where(*_conditions(f, default_tier, scored=True))


def _unscored(f: AccountFilter, default_tier: str) -> Select[Any] | None:
    if f.verdict is not None or f.min_risk is not None:
        return None  # needs a score
    join = accounts.outerjoin(scores, scores.c.account_id == accounts.c.account_id)
    return (
        select(accounts.c.account_id)
        .select_from(join)
        .where(scores.c.account_id.is_(None), *_conditions(f, default_tier, scored=False))
    )


# pages over segments ---------------------------------------------------------------------------------------------
@dataclass
class Segment:
    """A run of ids in their order: a page takes from one segment after another."""

    fetch: Callable[[int, int], list[str]]  # (offset, limit) -> ids
    count: Callable[[], int]


def _page(segments: Sequence[Segment], offset: int, limit: int) -> list[str]:
    """``limit`` ids from ``offset`` on, across the segments in turn (a segment is counted only when the page
    starts beyond its end)."""
    ids: list[str] = []
    for seg in segments:
        want = limit - len(ids)
        if want <= 0:
            break
        got = seg.fetch(offset, want)
        if got:
            ids += got
            offset = 0
        elif offset:
            offset = max(0, offset - seg.count())
    return ids


def _walk_segment(ids: Callable[[], Iterator[str]]) -> Segment:
    return Segment(
        fetch=lambda offset, limit: list(islice(ids(), offset, offset + limit)),
        count=lambda: sum(1 for _ in ids()),
    )


def _list_segment(ids: Callable[[], list[str]]) -> Segment:
    return Segment(fetch=lambda offset, limit: ids()[offset : offset + limit], count=lambda: len(ids()))


class AccountsReader:
    """The accounts table of one request (it memoises the id sets a page's tail may need)."""

    def __init__(self, engine: Engine, events: EventLogView, default_tier: str) -> None:
        self.engine = engine
        self.events = events
        self.default_tier = default_tier
        self._called: set[str] | None = None
        self._known: set[str] | None = None

    # sql helpers ------------------------------------------------------------------------------------------
    def _ids(self, query: Select[Any], offset: int = 0, limit: int | None = None) -> list[str]:
        if limit is not None:
            query = query.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def _count(self, query: Select[Any]) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())

    def _sql_segment(self, query: Select[Any]) -> Segment:
        return Segment(fetch=lambda o, n: self._ids(query, o, n), count=lambda: self._count(query))

    def called(self) -> set[str]:
        """Every account with at least one call (the event log's rollup, read whole: for the ends of the list)."""
        if self._called is None:
            self._called = set(self.events.account_ids())
        return self._called

    def known(self) -> set[str]:
        """Every account the store has a row for (``accounts`` or ``scores``)."""
        if self._known is None:
            with self.engine.connect() as conn:
                self._known = set(conn.execute(select(accounts.c.account_id)).scalars())
                self._known.update(conn.execute(select(scores.c.account_id)).scalars())
        return self._known

    # the page ---------------------------------------------------------------------------------------------
    def page(self, q: AccountQuery) -> AccountPage:
        if q.sort not in SORTS:
            raise ValueError(f"unknown sort {q.sort!r}")
        want = q.limit + 1
        # The store sorts and filters its own keys in SQL (on its indexes); a traffic key with a filter, and a text
        # search (a scan the risk order cannot stop early when it is selective), start from the candidates.
        crossed = q.sort in TRAFFIC_ORDER and not q.filter.empty
        candidates = self._candidates(q.filter) if crossed or q.filter.q else None
        if candidates is not None:
            ordered = self._sorted(candidates, q)
            ids, total = ordered[q.offset : q.offset + want], len(ordered)
        else:
            segments = self._state_segments(q) if q.sort in STATE_SORTS else self._traffic_segments(q)
            ids, total = _page(segments, q.offset, want), None
        return AccountPage(self.rows(ids[: q.limit]), q, len(ids) > q.limit, total)

    def _candidates(self, f: AccountFilter) -> list[str] | None:
        """Every account matching ``f``, or None when more than ``CANDIDATES`` may.

        The filter's most selective condition, counted on its own table (an index for verdict and risk), drives:
        its ids are read, and the other conditions are checked on those accounts' rows, read by primary key."""
        drivers: list[tuple[int, Callable[[], list[str]]]] = []
        if f.q:
            matched = self._text_matches(f.q, not f.state_only)
            drivers.append((len(matched), lambda: matched))
        for condition, table in self._single_table_conditions(f):
            query = select(table.c.account_id).where(condition)
            drivers.append((self._count(query), self._reader(query)))
        size, ids = min(drivers, key=lambda d: d[0])
        if size > CANDIDATES:
            return None
        found = ids()
        if len(drivers) == 1:
            return found  # the driver is the whole filter
        rows = self._store_rows(found)
        return [i for i in found if f.matches(rows[i])]

    def _reader(self, query: Select[Any]) -> Callable[[], list[str]]:
        return lambda: self._ids(query)

    def _single_table_conditions(self, f: AccountFilter) -> list[tuple[ColumnElement[bool], Any]]:
        out: list[tuple[ColumnElement[bool], Any]] = []
        if f.verdict is not None:
            out.append((scores.c.verdict == f.verdict, scores))
        if f.min_risk is not None:
            out.append((scores.c.risk >= f.min_risk, scores))
        if f.tier is not None:
            tier = accounts.c.tier == f.tier
            out.append((or_(tier, accounts.c.tier.is_(None)) if f.tier == self.default_tier else tier, accounts))
        return out

    def _text_matches(self, text: str, in_log: bool) -> list[str]:
        """Ids (up to ``CANDIDATES`` + 1) of store accounts whose id or organisation contains ``text``, and, with
        ``in_log``, of any account of the event log whose id does."""
        condition = or_(
            accounts.c.account_id.icontains(text, autoescape=True), accounts.c.org_id.icontains(text, autoescape=True)
        )
        found = set(self._ids(select(accounts.c.account_id).where(condition), 0, CANDIDATES + 1))
        if in_log:
            found.update(self.events.ids_containing(text, CANDIDATES + 1))
        return list(found)

    def _sorted(self, ids: list[str], q: AccountQuery) -> list[str]:
        """``ids`` in the query's order, those without a value for the key last by id."""
        keys: dict[str, Any]
        if q.sort in TRAFFIC_ORDER:
            keys = self.events.sort_keys(q.sort, ids)
        else:
            keys = {}
            with self.engine.connect() as conn:
                for chunk in chunks(ids):
                    rows = conn.execute(
                        select(scores.c.account_id, _verdict_rank(), scores.c.risk).where(
                            scores.c.account_id.in_(chunk)
                        )
                    )
                    for account_id, rank, risk in rows:
                        keys[account_id] = (rank, risk) if q.sort == "verdict" else risk
        have = [i for i in ids if i in keys]
        have.sort()  # ties by id, in both directions
        have.sort(key=keys.__getitem__, reverse=q.desc)
        return have + sorted(i for i in ids if i not in keys)

    def _state_segments(self, q: AccountQuery) -> list[Segment]:
        f = q.filter
        key: list[ColumnElement[Any]] = [_verdict_rank(), scores.c.risk] if q.sort == "verdict" else [scores.c.risk]
        order = [k.desc() if q.desc else k.asc() for k in key]
        segments = [self._sql_segment(_scored(f, self.default_tier).order_by(*order, scores.c.account_id))]
        unscored = _unscored(f, self.default_tier)
        if unscored is not None:
            segments.append(self._sql_segment(unscored.order_by(accounts.c.account_id)))
        if not f.state_only:
            segments.append(_list_segment(lambda: self._log_only(f.q)))
        return segments

    def _traffic_segments(self, q: AccountQuery) -> list[Segment]:
        f = q.filter
        if f.empty:
            called = Segment(
                fetch=lambda o, n: self.events.ordered(q.sort, q.desc, o, n), count=self.events.count_accounts
            )
        else:
            called = _walk_segment(lambda: self._called_matching(q))
        return [called, _walk_segment(lambda: self._never_called(f))]

    # the ends of the list, and filters that let many accounts through -----------------------------------
    def _log_only(self, contains: str | None) -> list[str]:
        """Accounts only the event log knows, by id."""
        known = self.known()
        text = contains.lower() if contains else None
        return sorted(i for i in self.called() if i not in known and (text is None or text in i.lower()))

    def _never_called(self, f: AccountFilter) -> Iterator[str]:
        """Accounts of the store matching ``f`` that never called, by id (walking ``accounts`` in key order)."""
        join = accounts.join if f.verdict is not None or f.min_risk is not None else accounts.outerjoin
        base = (
            select(accounts.c.account_id)
            .select_from(join(scores, scores.c.account_id == accounts.c.account_id))
            .where(*_conditions(f, self.default_tier, scored=False))
            .order_by(accounts.c.account_id)
        )
        called = self.called()
        after = ""
        while True:
            ids = self._ids(base.where(accounts.c.account_id > after), 0, WALK_CHUNK)
            if not ids:
                return
            yield from (i for i in ids if i not in called)
            after = ids[-1]

    def _called_matching(self, q: AccountQuery) -> Iterator[str]:
        """Accounts with traffic in the query's order that match its filter."""
        offset = 0
        while True:
            ids = self.events.ordered(q.sort, q.desc, offset, WALK_CHUNK)
            if not ids:
                return
            offset += len(ids)
            yield from (row.account_id for row in self._store_rows(ids).values() if q.filter.matches(row))

    # rows -------------------------------------------------------------------------------------------------
    def _store_rows(self, ids: Sequence[str]) -> dict[str, AccountRow]:
        """The store's columns of ``ids`` (by primary key), in the order of ``ids``."""
        out = {i: AccountRow(i) for i in ids}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for m in conn.execute(
                    select(accounts.c.account_id, accounts.c.org_id, accounts.c.tier, accounts.c.verified).where(
                        accounts.c.account_id.in_(chunk)
                    )
                ).mappings():
                    row = out[m["account_id"]]
                    row.known, row.org_id, row.verified = True, m["org_id"], bool(m["verified"])
                    row.tier = m["tier"] or self.default_tier
                for m in conn.execute(
                    select(scores.c.account_id, scores.c.risk, scores.c.verdict, scores.c.updated_at).where(
                        scores.c.account_id.in_(chunk)
                    )
                ).mappings():
                    row = out[m["account_id"]]
                    row.risk, row.verdict, row.scored_at = m["risk"], m["verdict"], as_utc(m["updated_at"])
                for m in conn.execute(
                    select(
                        standings.c.account_id,
                        standings.c.level,
                        standings.c.pending,
                        standings.c.confirmed,
                        standings.c.case_id,
                    ).where(standings.c.account_id.in_(chunk))
                ).mappings():
                    row = out[m["account_id"]]
                    row.level, row.pending = m["level"], m["pending"]
                    row.confirmed, row.case_id = bool(m["confirmed"]), m["case_id"]
        return out

    def rows(self, ids: Sequence[str]) -> list[AccountRow]:
        """The table's rows for ``ids``, in that order: store columns and traffic merged."""
        if not ids:
            return []
        out = self._store_rows(ids)
        for account_id, traffic in self.events.traffic(ids).items():
            out[account_id].traffic = traffic
        return list(out.values())
