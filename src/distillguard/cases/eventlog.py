"""What an evidence pack reads from the event log (``events.db``): each member's traffic over time, and sample
exchanges — the most extraction-like of an account's recent calls, then its most recent ones.

The log is opened read-only: exporting a pack never writes to it or holds its write lock. Reads go through the
``(account_id, ts_us)`` index; the search for extraction-like calls looks at an account's newest ``SCAN_LIMIT``
calls, so an account with millions of ordinary calls costs a bounded scan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distillguard.events.schema import request_object
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, from_row, to_object
from distillguard.store.chunks import chunks
from distillguard.timefmt import rfc3339_from_epoch_us

# An account's newest calls searched for extraction-like ones.
SCAN_LIMIT = 20_000
# Bucket widths (seconds) for traffic over time: the narrowest that gives at most MAX_BUCKETS buckets.
BUCKETS_S = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 240
# The request signals that mark a call as extraction-like (each counts one; more signals, more extraction-like).
EXTRACTION_SIGNALS = ("cot", "training_data", "rubric", "logprob_harvest", "benchmark")


def _marks(placeholders: int) -> str:
    return ", ".join("?" * placeholders)


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the event log at ``path`` (which must exist)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(row[1] for row in conn.execute("PRAGMA table_info(events)"))


def bucket_seconds(first_us: int, last_us: int) -> int:
    """The narrowest bucket width of :data:`BUCKETS_S` that covers the span in at most :data:`MAX_BUCKETS`."""
    span_s = max(0, last_us - first_us) / 1_000_000
    for width in BUCKETS_S:
        if span_s / width <= MAX_BUCKETS:
            return width
    return BUCKETS_S[-1]


def account_traffic(conn: sqlite3.Connection, account_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each account's totals from the log's rollup: calls, errors, refused, tokens, first and last call."""
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(account_ids):
        query = f"SELECT * FROM account_traffic WHERE account_id IN ({_marks(len(part))})"  # noqa: S608 - placeholders
        for row in conn.execute(query, list(part)):
            out[row["account_id"]] = {
                "calls": row["calls"],
                "errors": row["errors"],
                "refused": row["refused"],
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
                "first_seen": rfc3339_from_epoch_us(row["first_us"]),
                "last_seen": rfc3339_from_epoch_us(row["last_us"]),
            }
    return out


def span(conn: sqlite3.Connection, account_ids: Sequence[str]) -> tuple[int, int] | None:
    """The first and last call (epoch microseconds) of any of the accounts, or None when none called."""
    first: int | None = None
    last: int | None = None
    for part in chunks(account_ids):
        query = f"SELECT min(first_us), max(last_us) FROM account_traffic WHERE account_id IN ({_marks(len(part))})"  # noqa: S608
        low, high = conn.execute(query, list(part)).fetchone()
        if low is not None:
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    return (first, last) if first is not None and last is not None else None


def traffic_series(
    conn: sqlite3.Connection, account_ids: Sequence[str], first_us: int, last_us: int
) -> tuple[int, list[dict[str, Any]]]:
    """Calls, tokens and refusals per account per bucket over ``[first_us, last_us]``: (bucket width in seconds,
    rows ``{"account_id", "at", "calls", "tokens", "refused"}`` in time order)."""
    width = bucket_seconds(first_us, last_us)
    width_us = width * 1_000_000
    rows: list[dict[str, Any]] = []
    for part in chunks(account_ids):
        query = (
            f"SELECT account_id, ts_us - ts_us % {width_us} AS bucket, count(*) AS calls, "  # noqa: S608 - an int
            "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) AS tokens, "
            "sum(status IN (403, 429)) AS refused "
            f"FROM events WHERE account_id IN ({_marks(len(part))}) AND ts_us BETWEEN ? AND ? GROUP BY 1, 2"
        )
        for row in conn.execute(query, [*part, first_us, last_us]):
            rows.append(
                {
                    "account_id": row["account_id"],
                    "at": rfc3339_from_epoch_us(row["bucket"]),
                    "calls": row["calls"],
                    "tokens": row["tokens"],
                    "refused": row["refused"],
                }
            )
    rows.sort(key=lambda r: (r["at"], r["account_id"]))
    return width, rows


def _signal_names(columns: frozenset[str]) -> list[str]:
    return [name for name in EXTRACTION_SIGNALS if f"sig_{name}" in columns]


def _exchange(row: sqlite3.Row, columns: frozenset[str], chosen: str) -> dict[str, Any]:
    signals = None
    if "signals_version" in columns and row["signals_version"] == SIGNALS_VERSION:
        signals = to_object(from_row(tuple(row[f"sig_{name}"] for name in SIGNAL_COLUMNS)))
    marks = []
    if signals is not None:
        for name in EXTRACTION_SIGNALS:
            value = signals.get(name)
            if value:
                # Rule ids name their detector ("cot.show_reasoning"); flags are named by their signal.
                marks.append(value if isinstance(value, str) else name)
    return {
        "event_id": row["event_id"],
        "account_id": row["account_id"],
        "at": rfc3339_from_epoch_us(row["ts_us"]),
        "chosen": chosen,
        "extraction_signals": marks,
        "endpoint": row["endpoint"],
        "model": row["model"],
        "stream": bool(row["stream"]),
        "status": row["status"],
        "error_code": row["error_code"],
        "usage": {"prompt_tokens": row["prompt_tokens"], "completion_tokens": row["completion_tokens"]},
        "finish_reason": row["finish_reason"],
        "latency_ms": row["latency_ms"],
        "key_id": row["key_id"],
        "client": {"ip": row["client_ip"], "user_agent": row["user_agent"]},
        "request": request_object(bytes(row["request"])),
        "response": {"text": row["text"], "text_sha256": row["text_sha256"]},
        "signals": signals,
    }


def samples(conn: sqlite3.Connection, account_id: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` exchanges of the account: the most extraction-like of its newest :data:`SCAN_LIMIT` calls
    (about half: those with the most extraction signals, newest first among equals), then its most recent.
    Each says why it was chosen (``"extraction-like"`` or ``"recent"``); texts are as stored, before any privacy
    rule (see ``privacy.py``)."""
    if count <= 0:
        return []
    columns = _columns(conn)
    chosen: dict[str, dict[str, Any]] = {}
    names = _signal_names(columns)
    if names and "signals_version" in columns:
        strength = " + ".join(f"(coalesce(sig_{n}, 0) != 0)" for n in names)
        query = (
            f"SELECT * FROM (SELECT *, {strength} AS strength FROM events "  # noqa: S608 - fixed column names
            "WHERE account_id = ? ORDER BY ts_us DESC LIMIT ?) "
            "WHERE strength > 0 AND signals_version = ? ORDER BY strength DESC, ts_us DESC LIMIT ?"
        )
        for row in conn.execute(query, (account_id, SCAN_LIMIT, SIGNALS_VERSION, (count + 1) // 2)):
            chosen[row["event_id"]] = _exchange(row, columns, "extraction-like")
    query = "SELECT * FROM events WHERE account_id = ? ORDER BY ts_us DESC LIMIT ?"
    for row in conn.execute(query, (account_id, count)):
        if len(chosen) >= count:
            break
        if row["event_id"] not in chosen:
            chosen[row["event_id"]] = _exchange(row, columns, "recent")
    return list(chosen.values())


def has_events(path: Path) -> bool:
    """Whether ``path`` is an event log with its rollups (what a pack needs to read)."""
    if not path.is_file():
        return False
    with reading(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"events", "account_traffic"} <= tables
