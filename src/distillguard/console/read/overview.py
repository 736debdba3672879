"""The overview: traffic over a range (from the event log's per-minute rollup), accounts by verdict and standing,
actions over time (the audit trail, grouped in the database), open cases and campaigns."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Engine, Integer, cast, extract, func, select
from sqlalchemy.sql.elements import ColumnElement

from distillguard.detect.verdicts import FLAGGED
from distillguard.events.logview import Bucket, EventLogView
from distillguard.respond.book import OPEN_STATUSES
from distillguard.store.schema import audit_log, campaigns, cases, scores, standings

MINUTE_US = 60_000_000
# The ranges the overview offers: how far back, and the width of a bar.
RANGES: dict[str, tuple[int, int]] = {
    "hour": (3600 * 1_000_000, MINUTE_US),
    "day": (86_400 * 1_000_000, 15 * MINUTE_US),
    "week": (7 * 86_400 * 1_000_000, 60 * MINUTE_US),
}
# Audit actions that are the deployment acting on accounts or reviewers deciding (token bookkeeping is not).
ACTION_PREFIXES = ("level_", "case_", "campaign_case_", "appeal_")
# A bucket of the actions chart is final once it ended this long ago (an entry is stamped when its transaction
# appends it; one still committing is younger than this).
SETTLE_US = 60_000_000
# Settled buckets kept before the start of a range (memory stays bounded).
KEEP_BUCKETS = 2


@dataclass
class Overview:
    range: str
    since_us: int
    bucket_us: int
    traffic: list[Bucket]
    verdicts: dict[str, int]
    standings: dict[str, int]
    pending: int
    # (bucket start in epoch microseconds, action, count)
    actions: list[tuple[int, str, int]]
    cases: dict[str, int]
    campaigns: int
    flagged_campaigns: int
    events_available: bool

    @property
    def totals(self) -> Bucket:
        t = self.traffic
        return Bucket(
            self.since_us,
            sum(b.calls for b in t),
            sum(b.errors for b in t),
            sum(b.refused for b in t),
            sum(b.prompt_tokens for b in t),
            sum(b.completion_tokens for b in t),
        )

    @property
    def flagged(self) -> int:
        """Accounts whose latest verdict is throttle or stronger."""
        return sum(n for verdict, n in self.verdicts.items() if verdict in FLAGGED)

    @property
    def open_cases(self) -> int:
        return sum(self.cases.get(s, 0) for s in OPEN_STATUSES)


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[int]:
    """Seconds since the epoch of a UTC timestamp column, in the database's own dialect."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(extract("epoch", column), BigInteger)


class ActionTally:
    """Audit actions per time bucket, remembered for the buckets that can no longer change.

    The trail is append-only and every entry is stamped with the time it is appended, so a bucket that ended more
    than ``SETTLE_US`` ago keeps its counts for good; only newer buckets are read again. The first overview of a
    range reads every entry in it; later ones, the last bucket or two.
    """

    def __init__(self) -> None:
        self._settled: dict[int, dict[tuple[int, str], int]] = {}  # bucket width -> (bucket start, action) -> n
        self._until: dict[int, int] = {}  # bucket width -> where the settled buckets end
        self._lock = threading.Lock()

    def counts(self, engine: Engine, since_us: int, bucket_us: int, now_us: int) -> list[tuple[int, str, int]]:
        """(bucket start, action, count) of the buckets from the one holding ``since_us`` on, oldest first."""
        first = since_us - since_us % bucket_us
        with self._lock:
            settled = dict(self._settled.get(bucket_us, {}))
            until = self._until.get(bucket_us, first)
        start = max(first, until)
        fresh = _action_counts(engine, start, bucket_us)
        settle = now_us - SETTLE_US
        settled_until = settle - settle % bucket_us
        with self._lock:
            keep = self._settled.setdefault(bucket_us, {})
            for key in [k for k in keep if k[0] < first - bucket_us * KEEP_BUCKETS]:
                del keep[key]  # long out of every range
            for bucket, action, n in fresh:
                if bucket < settled_until:
                    keep[(bucket, action)] = n
            self._until[bucket_us] = max(start, settled_until)
        merged = {k: n for k, n in settled.items() if k[0] >= first}
        merged.update(((b, a), n) for b, a, n in fresh)
        return sorted((b, a, n) for (b, a), n in merged.items())


def _action_counts(engine: Engine, start_us: int, bucket_us: int) -> list[tuple[int, str, int]]:
    bucket_s = bucket_us // 1_000_000
    seconds = epoch_seconds(audit_log.c.at, engine.dialect.name)
    bucket = (seconds - seconds % bucket_s).label("bucket")
    query = (
        select(bucket, audit_log.c.action, func.count())
        .where(audit_log.c.at >= datetime.fromtimestamp(start_us / 1e6, UTC))
        .group_by(bucket, audit_log.c.action)
    )
    with engine.connect() as conn:
        return [
            (int(b) * 1_000_000, str(action), int(n))
            for b, action, n in conn.execute(query)
            if str(action).startswith(ACTION_PREFIXES)
        ]


def read_overview(
    engine: Engine, events: EventLogView, tally: ActionTally, range_name: str, now_us: int | None = None
) -> Overview:
    span_us, bucket_us = RANGES[range_name]
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    since_us = now_us - span_us
    with engine.connect() as conn:
        verdicts = {
            v: int(n) for v, n in conn.execute(select(scores.c.verdict, func.count()).group_by(scores.c.verdict))
        }
        levels = {
            v: int(n) for v, n in conn.execute(select(standings.c.level, func.count()).group_by(standings.c.level))
        }
        pending = int(
            conn.execute(select(func.count()).where(standings.c.pending.is_not(None))).scalar_one()  # small table
        )
        counts = {s: int(n) for s, n in conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))}
        campaign_verdicts: dict[str, int] = {
            str(v): int(n)
            for v, n in conn.execute(select(campaigns.c.verdict, func.count()).group_by(campaigns.c.verdict))
        }
    return Overview(
        range=range_name,
        since_us=since_us,
        bucket_us=bucket_us,
        traffic=events.buckets(since_us, bucket_us),
        verdicts=verdicts,
        standings=levels,
        pending=pending,
        actions=tally.counts(engine, since_us, bucket_us, now_us),
        cases=counts,
        campaigns=sum(campaign_verdicts.values()),
        flagged_campaigns=sum(n for v, n in campaign_verdicts.items() if v != "allow"),
        events_available=events.available,
    )
