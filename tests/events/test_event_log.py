"""The embedded event log and the JSON form of events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.config import EventsConfig
from distillguard.events.export import export_events
from distillguard.events.jsonl import read_events
from distillguard.events.retention import retained_text
from distillguard.events.schema import Event, unparsed_request
from distillguard.events.sqlite import SQLiteEventLog


def make(i: int, **kw: Any) -> Event:
    return Event(
        event_id=f"req_{i:024x}",
        ts_us=1_790_000_000_000_000 + i,
        endpoint="/v1/chat/completions",
        request_raw=b'{"model": "m", "messages": []}',
        account_id=f"acc{i % 3}",
        **kw,
    )


def test_events_are_written_in_batches_and_exported_in_order(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig(batch_size=7))
    log.start()
    for i in range(50):
        log.submit(make(i, status=200, prompt_tokens=3, completion_tokens=4, text="t", extra={"k": i}))
    log.close()
    out = tmp_path / "events.jsonl"
    assert export_events(tmp_path, out) == 50
    events = list(read_events(out))
    assert [e.event_id for e in events] == [f"req_{i:024x}" for i in range(50)]
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert first["ts"] == "2026-09-21T14:13:20.000000Z" and first["request"] == {"model": "m", "messages": []}
    assert first["response"]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4} and first["extra"] == {"k": 0}


def test_the_same_event_id_is_stored_once(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig())
    log.submit(make(1))
    log.submit(make(1))
    log.flush()
    assert log.count() == 1
    log.close()


def test_saturation_is_reported_before_memory_runs_away(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig(queue_max=3))
    for i in range(3):
        log.submit(make(i))
    assert log.saturated and log.depth == 3
    log.close()
    assert not log.saturated


def test_time_window_export(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig())
    for i in range(10):
        log.submit(make(i))
    log.close()
    out = tmp_path / "w.jsonl"
    assert export_events(tmp_path, out, since_us=1_790_000_000_000_003, until_us=1_790_000_000_000_006) == 3


def test_json_roundtrip_keeps_every_field() -> None:
    event = make(
        5,
        key_id="k",
        org_id="o",
        client_ip="1.2.3.4",
        user_agent="ua",
        client_fingerprint="ho:0123456789abcdef",
        client_tls="t13d1516h2_8daaf6152771_b186095e22b6",
        model="m",
        upstream="u",
        stream=True,
        status=200,
        prompt_tokens=1,
        completion_tokens=2,
        finish_reason="stop",
        text="hi",
        text_sha256="ab",
        latency_ms=1.5,
        ttft_ms=0.5,
        error_code=None,
        extra={"x": 1},
    )
    assert Event.from_json(event.to_json()).to_json() == event.to_json()


def test_foreign_events_need_the_required_fields() -> None:
    with pytest.raises(ValueError, match="account_id"):
        Event.from_json({"event_id": "e", "ts": "2026-01-01T00:00:00Z", "request": {}})


def test_unparsed_bodies_are_kept_as_text() -> None:
    assert orjson.loads(unparsed_request(b"\xffabc")) == {"_unparsed": "\ufffdabc", "_bytes": 4}


@pytest.mark.parametrize(("mode", "kept"), [("full", "hello world"), ("truncated", "hello"), ("hashed", None)])
def test_text_retention_modes(mode: str, kept: str | None) -> None:
    text, digest = retained_text("hello world", mode, 5)  # type: ignore[arg-type]
    assert text == kept
    assert digest == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
