"""Enrichment at ingest: the per-request signals, computed here only for events that arrive without them.

The gateway computes signals on the request path when detection is on, so most events carry them and ingest only
checks their version (the fast path). Events of other producers, of gateways with detection off, or of an older
extractor get them here, once, before they are archived: the batch side then only aggregates columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from distillguard.detect.signals import extract
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, RequestSignals, from_object
from distillguard.ingest.archive import Record

CHAT = "/v1/chat/completions"
_SIGNAL_NAMES = frozenset(SIGNAL_COLUMNS)


def current_signals(obj: Any) -> bool:
    """True when ``obj`` looks like a ``signals`` object of the current version: every field there, ``content_sig``
    an integer >= 0. The other fields' types are not checked here (see :func:`enrich`)."""
    if type(obj) is not dict or obj.get("version") != SIGNALS_VERSION or not obj.keys() >= _SIGNAL_NAMES:
        return False
    content_sig = obj["content_sig"]
    return type(content_sig) is int and content_sig >= 0


def enrich(records: Iterable[Record], checked: bool) -> int:
    """Give every record its signals: the event's own when of the current version, else computed from its request.
    Returns how many were computed.

    ``checked``: the records get :class:`RequestSignals` whose every field's type is checked (what the scorer
    needs, and what a batch the archive refused is enriched with again). Otherwise a record keeps the event's own
    object as it came: checking every field in Python costs more than the rest of ingest (measured: ~23 us of ~50 us
    per event), while the Parquet columns check the same types in C when the table is built.
    """
    computed = 0
    for record in records:
        if checked and isinstance(record.signals, RequestSignals):
            continue  # computed, or checked, before
        event = record.event
        stored = event.get("signals")
        signals: RequestSignals | dict[str, Any] | None = (
            from_object(stored) if checked else stored if current_signals(stored) else None
        )
        if signals is None:
            signals = compute_signals(event)
            computed += 1
        record.signals = signals
    return computed


def compute_signals(event: dict[str, Any]) -> RequestSignals:
    """Signals from the event's request body (``extract`` is total: any body gives a record)."""
    request = event.get("request")
    return extract(request if isinstance(request, dict) else {}, event.get("endpoint") or CHAT)
