"""Rollups of the event log for the console's traffic charts and accounts table: calls, errors, refusals and
tokens per minute, and per account (with its first and last call).

The sink adds each batch it stores, aggregated in Python first: a batch of 512 calls from a few accounts in one
minute costs a handful of upserts rather than two per event (measured: per-row triggers doubled the writer
thread's CPU, which a gateway pinned to one core pays for in throughput). Only events that really landed are
counted: ``INSERT OR IGNORE`` skips an event id already stored, and so does ``add``. An event log written before
the rollups existed gets them filled from its events when it is opened (``ensure``). They make a chart over ten
million events a scan of a few thousand rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distillguard.events.schema import Event

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
# HTTP statuses counted as refusals (rate limits, blocks and challenges) and as errors (ours or the upstream's).
REFUSED = frozenset({403, 429})
ERROR_FROM = 500

_DDL = (
    """CREATE TABLE IF NOT EXISTS traffic_minutes (
        minute_us INTEGER PRIMARY KEY,
        calls INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        refused INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS account_traffic (
        account_id TEXT PRIMARY KEY,
        calls INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        refused INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        first_us INTEGER NOT NULL,
        last_us INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ix_account_traffic_calls ON account_traffic(calls)",
    "CREATE INDEX IF NOT EXISTS ix_account_traffic_last ON account_traffic(last_us)",
)
_BACKFILL = (
    f"""INSERT INTO traffic_minutes
    SELECT ts_us - ts_us % {MINUTE_US}, count(*), sum(status >= {ERROR_FROM}), sum(status IN (403, 429)),
           coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0)
    FROM events GROUP BY 1""",  # noqa: S608 - constants only
    f"""INSERT INTO account_traffic
    SELECT account_id, count(*), sum(status >= {ERROR_FROM}), sum(status IN (403, 429)),
           coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), min(ts_us), max(ts_us)
    FROM events GROUP BY 1""",  # noqa: S608 - constants only
)
_ADD_MINUTE = """INSERT INTO traffic_minutes VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT(minute_us) DO UPDATE SET
        calls = calls + excluded.calls, errors = errors + excluded.errors, refused = refused + excluded.refused,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens"""
_ADD_ACCOUNT = """INSERT INTO account_traffic VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(account_id) DO UPDATE SET
        calls = calls + excluded.calls, errors = errors + excluded.errors, refused = refused + excluded.refused,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        first_us = min(first_us, excluded.first_us), last_us = max(last_us, excluded.last_us)"""


def ensure(conn: sqlite3.Connection) -> bool:
    """Create the rollup tables if they are missing, filled from the events already stored (in one transaction
    under the write lock, so two processes opening an older log at once fill them once). True if it created them."""

    def present() -> bool:
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)"
        return bool(conn.execute(query, ("traffic_minutes", "account_traffic")).fetchone()[0] == 2)

    if present():
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        created = not present()
        if created:
            for statement in _DDL + _BACKFILL:
                conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise
    return created


def add(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Count stored events into the rollups (inside the caller's transaction)."""
    minutes: dict[int, list[int]] = {}
    accounts: dict[str, list[int]] = {}
    for e in events:
        status = e.status
        error = 1 if status >= ERROR_FROM else 0
        refused = 1 if status in REFUSED else 0
        prompt = e.prompt_tokens or 0
        completion = e.completion_tokens or 0
        ts = e.ts_us
        minute = minutes.get(ts - ts % MINUTE_US)
        if minute is None:
            minutes[ts - ts % MINUTE_US] = [1, error, refused, prompt, completion]
        else:
            minute[0] += 1
            minute[1] += error
            minute[2] += refused
            minute[3] += prompt
            minute[4] += completion
        account = accounts.get(e.account_id)
        if account is None:
            accounts[e.account_id] = [1, error, refused, prompt, completion, ts, ts]
        else:
            account[0] += 1
            account[1] += error
            account[2] += refused
            account[3] += prompt
            account[4] += completion
            account[5] = min(account[5], ts)
            account[6] = max(account[6], ts)
    conn.executemany(_ADD_MINUTE, [(m, *v) for m, v in minutes.items()])
    conn.executemany(_ADD_ACCOUNT, [(a, *v) for a, v in accounts.items()])
