"""Enrichment at ingest: stored signals of the current version are kept, everything else gets computed ones."""

from __future__ import annotations

from typing import Any

import pytest

from distillguard.events.signals import RequestSignals
from distillguard.ingest.archive import Record
from distillguard.ingest.enrich import compute_signals, enrich
from tests.ingest.events import make_event


def record_with(signals: Any) -> Record:
    event = make_event(1, signals=True).to_json()
    if signals != "as made":
        event["signals"] = signals(event["signals"]) if callable(signals) else signals
    return Record("1-1", event, 0)


def test_current_stored_signals_are_kept_as_they_came() -> None:
    record = record_with("as made")
    assert enrich([record], checked=False) == 0
    assert record.signals is record.event["signals"]


@pytest.mark.parametrize(
    "signals",
    [
        None,
        "not an object",
        lambda s: {**s, "version": 0},  # another extractor's
        lambda s: {k: v for k, v in s.items() if k != "depth"},
        lambda s: {**s, "content_sig": -1},
        lambda s: {**s, "content_sig": True},
    ],
    ids=["absent", "not-object", "old-version", "missing-field", "negative-sig", "bool-sig"],
)
def test_missing_or_outdated_signals_are_computed_from_the_request(signals: Any) -> None:
    record = record_with(signals)
    assert enrich([record], checked=False) == 1
    assert record.signals == compute_signals(record.event)


def test_checked_enrichment_gives_records_and_recomputes_wrong_types() -> None:
    kept, retyped = record_with("as made"), record_with(lambda s: {**s, "depth": "3"})
    assert enrich([kept, retyped], checked=True) == 1
    assert isinstance(kept.signals, RequestSignals) and isinstance(retyped.signals, RequestSignals)
    assert retyped.signals.depth == compute_signals(retyped.event).depth == kept.signals.depth
    assert enrich([kept, retyped], checked=True) == 0  # records already checked are not looked at again
