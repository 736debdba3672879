"""The event log read for a replay of detection (the clustering job): the columns it needs, stored signals, and the
request body only where there are none; older logs read as they are."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from distillguard.config import EventsConfig
from distillguard.detect.signals import extract
from distillguard.events.schema import Event
from distillguard.events.sqlite import REPLAY_COLUMNS, SQLiteEventLog, iter_events, iter_replay
from tests.events.first_release import FIRST_RELEASE_EVENTS

BODY = {"model": "m", "messages": [{"role": "user", "content": "Think step by step: why is the sky blue?"}]}


def event(i: int, with_signals: bool) -> Event:
    return Event(
        event_id=f"req_{i:024x}",
        ts_us=1_790_000_000_000_000 + i,
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps(BODY),
        account_id=f"acc-{i}",
        client_ip="198.51.100.7",
        user_agent="sdk/1",
        client_fingerprint="ho:abc",
        model="m",
        status=200,
        prompt_tokens=12,
        completion_tokens=40,
        text="an answer the replay never reads",
        signals=extract(BODY) if with_signals else None,
    )


def test_replay_reads_what_detection_needs_in_time_order(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig())
    for i, with_signals in [(3, True), (1, False), (2, True)]:
        log.submit(event(i, with_signals))
    log.close()
    db = tmp_path / "events.db"
    replayed = list(iter_replay(db))
    assert [fields[REPLAY_COLUMNS.index("account_id")] for fields, _, _ in replayed] == ["acc-1", "acc-2", "acc-3"]
    fields, signals, request = replayed[1]
    assert signals == extract(BODY) and request is None  # stored signals: the body is not read
    assert dict(zip(REPLAY_COLUMNS, fields, strict=True)) == {
        "ts_us": 1_790_000_000_000_002, "account_id": "acc-2", "status": 200, "prompt_tokens": 12,
        "completion_tokens": 40, "model": "m", "client_ip": "198.51.100.7", "user_agent": "sdk/1",
        "client_fingerprint": "ho:abc", "client_tls": None, "endpoint": "/v1/chat/completions",
    }  # fmt: skip
    _, none, body = replayed[0]
    assert none is None and body is not None and orjson.loads(body) == BODY
    assert [f[0] for f, _, _ in iter_replay(db, since_us=1_790_000_000_000_002)] == [
        1_790_000_000_000_002,
        1_790_000_000_000_003,
    ]
    # The same events as the full reader gives them.
    full = list(iter_events(db))
    assert [(e.ts_us, e.signals) for e in full] == [(f[0], s) for f, s, _ in replayed]


def test_replay_reads_a_log_of_the_first_release_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    conn = sqlite3.connect(db)
    conn.execute(FIRST_RELEASE_EVENTS)
    conn.execute(
        "INSERT INTO events (event_id, ts_us, account_id, client_ip, endpoint, stream, request, status, schema_version)"
        " VALUES ('req_old', 1, 'acc', '203.0.113.9', '/v1/chat/completions', 0, X'7b7d', 200, 1)"
    )
    conn.commit()
    conn.close()
    [(fields, signals, request)] = list(iter_replay(db))
    assert signals is None and request == b"{}"
    assert fields[REPLAY_COLUMNS.index("client_ip")] == "203.0.113.9"
    assert fields[REPLAY_COLUMNS.index("client_fingerprint")] is None
