"""What an evidence pack reads of the deployment's events (through :mod:`distillguard.events.logview`, the event
log or the store's rollups and the archive): each member's traffic totals and traffic over time, and sample
exchanges — the most extraction-like of an account's recent calls, then its most recent ones.

The search for extraction-like calls looks at the signals of an account's newest ``SCAN_LIMIT`` calls, so an
account with millions of ordinary calls costs a bounded read; only the calls chosen are read whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distillguard.events.logview import ALL_COLUMNS, EventLogView, Series
from distillguard.events.schema import request_object
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, from_row, to_object
from distillguard.timefmt import rfc3339_from_epoch_us

# An account's newest calls searched for extraction-like ones.
SCAN_LIMIT = 20_000
# Bucket widths (seconds) for traffic over time: the narrowest that gives at most MAX_BUCKETS buckets.
BUCKETS_S = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 240
# The request signals that mark a call as extraction-like (each counts one; more signals, more extraction-like).
EXTRACTION_SIGNALS = ("cot", "training_data", "rubric", "logprob_harvest", "benchmark")
_STRENGTH_COLUMNS = ("event_id", "ts_us", "signals_version", *(f"sig_{name}" for name in EXTRACTION_SIGNALS))


def bucket_seconds(first_us: int, last_us: int) -> int:
    """The narrowest bucket width of :data:`BUCKETS_S` that covers the span in at most :data:`MAX_BUCKETS`."""
    span_s = max(0, last_us - first_us) / 1_000_000
    for width in BUCKETS_S:
        if span_s / width <= MAX_BUCKETS:
            return width
    return BUCKETS_S[-1]


def account_traffic(log: EventLogView, account_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each account's totals from the rollups: calls, errors, refused, tokens, first and last call."""
    return {
        account_id: {
            "calls": t.calls,
            "errors": t.errors,
            "refused": t.refused,
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "first_seen": rfc3339_from_epoch_us(t.first_us) if t.first_us is not None else None,
            "last_seen": rfc3339_from_epoch_us(t.last_us) if t.last_us is not None else None,
        }
        for account_id, t in log.traffic(account_ids).items()
    }


def span(log: EventLogView, account_ids: Sequence[str]) -> tuple[int, int] | None:
    """The first and last call (epoch microseconds) of any of the accounts, or None when none called."""
    totals = log.traffic(account_ids).values()
    firsts = [t.first_us for t in totals if t.first_us is not None]
    lasts = [t.last_us for t in totals if t.last_us is not None]
    return (min(firsts), max(lasts)) if firsts and lasts else None


def traffic_series(
    log: EventLogView, account_ids: Sequence[str], first_us: int, last_us: int
) -> tuple[int, list[dict[str, Any]], bool]:
    """Calls, tokens and refusals per account per bucket over ``[first_us, last_us]``: (bucket width in seconds,
    rows ``{"account_id", "at", "calls", "tokens", "refused"}`` in time order, whether the read covered it all)."""
    width = bucket_seconds(first_us, last_us)
    series: Series = log.series(account_ids, first_us, last_us, width * 1_000_000)
    rows = [
        {
            "account_id": p.account_id,
            "at": rfc3339_from_epoch_us(p.start_us),
            "calls": p.calls,
            "tokens": p.tokens,
            "refused": p.refused,
        }
        for p in series.points
    ]
    rows.sort(key=lambda r: (r["at"], r["account_id"]))
    return width, rows, series.complete


def _strength(row: dict[str, Any]) -> int:
    if row.get("signals_version") != SIGNALS_VERSION:
        return 0
    return sum(1 for name in EXTRACTION_SIGNALS if row.get(f"sig_{name}"))


def _exchange(row: dict[str, Any], chosen: str) -> dict[str, Any]:
    signals = None
    if row["signals_version"] == SIGNALS_VERSION:
        signals = to_object(from_row(tuple(row[f"sig_{name}"] for name in SIGNAL_COLUMNS)))
    marks = []
    if signals is not None:
        for name in EXTRACTION_SIGNALS:
            value = signals.get(name)
            if value:
                # Rule ids name their detector ("cot.show_reasoning"); flags are named by their signal.
                marks.append(value if isinstance(value, str) else name)
    request = row["request"]
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
        # The event log keeps the request as bytes, the archive as text.
        "request": request_object(request.encode() if isinstance(request, str) else bytes(request)),
        "response": {"text": row["text"], "text_sha256": row["text_sha256"]},
        "signals": signals,
    }


def samples(log: EventLogView, account_id: str, count: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``count`` exchanges of the account: the most extraction-like of its newest :data:`SCAN_LIMIT` calls
    (about half: those with the most extraction signals, newest first among equals), then its most recent; and
    whether the reads covered what they looked for. Each says why it was chosen (``"extraction-like"`` or
    ``"recent"``); texts are as stored, before any privacy rule (see ``privacy.py``)."""
    if count <= 0:
        return [], True
    scanned = log.calls(account_id, SCAN_LIMIT, _STRENGTH_COLUMNS)
    strong = [(strength, row) for row in scanned.rows if (strength := _strength(row)) > 0]
    strong.sort(key=lambda pair: (pair[0], pair[1]["ts_us"]), reverse=True)
    picked = {row["event_id"]: "extraction-like" for _, row in strong[: (count + 1) // 2]}
    for row in scanned.rows[:count]:  # newest first
        if len(picked) >= count:
            break
        picked.setdefault(row["event_id"], "recent")
    if not picked:
        return [], scanned.complete
    full = log.calls(account_id, len(picked), ALL_COLUMNS, among=set(picked))
    by_id = {row["event_id"]: row for row in full.rows}
    chosen = [_exchange(by_id[event_id], why) for event_id, why in picked.items() if event_id in by_id]
    return chosen, scanned.complete and full.complete
