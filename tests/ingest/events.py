"""Events for the stream and ingest tests: valid gateway-shaped events with distinct ids and chosen times."""

from __future__ import annotations

import orjson

from distillguard.events.schema import Event

BASE_US = 1_795_000_000_000_000  # 2026-11-18T...Z


def make_event(i: int, ts_us: int | None = None, account: str | None = None, signals: bool = False) -> Event:
    event = Event(
        event_id=f"req_{i:024x}",
        ts_us=ts_us if ts_us is not None else BASE_US + i * 1000,
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps({"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}),
        account_id=account or f"acct_{i % 7}",
        client_ip="203.0.113.7",
        model="m",
        status=200,
        prompt_tokens=9,
        completion_tokens=40,
        latency_ms=12.5,
    )
    if signals:
        from distillguard.detect.signals import extract

        event.signals = extract(orjson.loads(event.request_raw), event.endpoint)
    return event
