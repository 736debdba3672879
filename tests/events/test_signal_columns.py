"""Request signals stored with events: SQLite columns (with migration of older logs) and the exported object."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from distillguard.config import EventsConfig
from distillguard.detect.analyze import AnalyzeReport, read_rows
from distillguard.detect.signals import extract
from distillguard.events.export import export_events
from distillguard.events.readers import native_record
from distillguard.events.schema import Event
from distillguard.events.signals import (
    SIGNAL_COLUMNS,
    SIGNALS_VERSION,
    RequestSignals,
    as_row,
    from_object,
    from_row,
    to_object,
)
from distillguard.events.sqlite import SQLiteEventLog, iter_events
from tests.events.first_release import FIRST_RELEASE_EVENTS

BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a grader."},
        {"role": "user", "content": "Think step by step and show every step of your reasoning: why is the sky blue?"},
    ],
    "max_tokens": 3,
    "logprobs": True,
    "top_logprobs": 5,
    "temperature": 0.7,
}


@pytest.fixture(scope="module")
def signals() -> RequestSignals:
    s = extract(BODY)
    assert s.cot is not None and s.logprob_harvest and s.content_sig != 0
    return s


def event(i: int, signals: RequestSignals | None) -> Event:
    return Event(
        event_id=f"req_{i:024x}",
        ts_us=1_790_000_000_000_000 + i,
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps(BODY),
        account_id="acc",
        status=200,
        signals=signals,
    )


def test_row_and_object_forms_round_trip(signals: RequestSignals) -> None:
    assert from_row(as_row(signals)) == signals
    obj = orjson.loads(orjson.dumps(to_object(signals)))
    assert obj["version"] == SIGNALS_VERSION and set(obj) == {"version", *SIGNAL_COLUMNS}
    assert from_object(obj) == signals


@pytest.mark.parametrize(
    "change",
    [
        {"version": SIGNALS_VERSION + 1},  # another extractor: recompute
        {"version": None},
        {"depth": "3"},
        {"content_sig": -1},
        {"logprob_harvest": 1},
        {"template_id": None},
        {"temperature": "hot"},
    ],
)
def test_stored_objects_of_another_version_or_malformed_are_not_trusted(
    signals: RequestSignals, change: dict[str, object]
) -> None:
    obj = to_object(signals) | change
    assert from_object(obj) is None
    assert from_object({k: v for k, v in to_object(signals).items() if k != "domain"}) is None
    assert from_object("garbage") is None and from_object(None) is None


def test_the_event_log_stores_signals_as_columns(tmp_path: Path, signals: RequestSignals) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig())
    log.submit(event(1, signals))
    log.submit(event(2, None))
    log.close()
    conn = sqlite3.connect(tmp_path / "events.db")
    row = conn.execute("SELECT signals_version, sig_cot, sig_logprob_harvest, sig_max_tokens FROM events").fetchone()
    assert row == (SIGNALS_VERSION, signals.cot, 1, 3)
    # Queryable like any column: the SimHash as a signed int64, the template id as text.
    assert conn.execute("SELECT count(*) FROM events WHERE sig_template_id = ?", (signals.template_id,)).fetchone()
    conn.close()
    stored = list(iter_events(tmp_path / "events.db"))
    assert stored[0].signals == signals and stored[1].signals is None


def test_an_older_event_log_is_migrated_in_place(tmp_path: Path, signals: RequestSignals) -> None:
    db = tmp_path / "events.db"
    conn = sqlite3.connect(db)
    # The table as the first release created it (no signal columns), with one event in it.
    conn.execute(FIRST_RELEASE_EVENTS)
    conn.execute(
        "INSERT INTO events (event_id, ts_us, account_id, endpoint, stream, request, status, schema_version)"
        " VALUES ('req_old', 1, 'acc', '/v1/chat/completions', 0, X'7b7d', 200, 1)"
    )
    conn.commit()
    # Read-only readers of the old file work before any migration.
    assert [e.signals for e in iter_events(db)] == [None]
    conn.close()
    log = SQLiteEventLog(tmp_path, EventsConfig())
    log.submit(event(5, signals))
    log.close()
    assert [(e.event_id, e.signals) for e in iter_events(db)] == [("req_old", None), (event(5, None).event_id, signals)]
    conn = sqlite3.connect(db)
    assert {"client_fingerprint", "client_tls"} <= {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    conn.close()


def test_exported_events_carry_signals_and_analyze_reuses_them(tmp_path: Path, signals: RequestSignals) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig())
    log.submit(event(1, signals))
    log.close()
    out = tmp_path / "events.jsonl"
    export_events(tmp_path, out)
    line = out.read_bytes().splitlines()[0]
    assert orjson.loads(line)["signals"]["cot"] == signals.cot
    record = native_record(line)
    assert not isinstance(record, str) and getattr(record, "signals", None) == signals

    # A stored value that extraction would not give shows which one analyze used.
    forged = orjson.loads(line)
    forged["signals"]["domain"] = "forged-domain"
    out.write_bytes(orjson.dumps(forged) + b"\n")
    stored = read_rows(out, "native", AnalyzeReport(), workers=1)
    recomputed = read_rows(out, "native", AnalyzeReport(), workers=1, recompute_signals=True)
    assert stored[0][6].domain == "forged-domain"
    assert recomputed[0][6] == signals
