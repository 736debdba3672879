"""The event log's rollups (traffic per minute, traffic per account): every stored event counted once, a
duplicate event id not at all, and an older log gets them filled from its events when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from distillguard.config import EventsConfig
from distillguard.events.schema import Event
from distillguard.events.sqlite import EVENTS_DB, SQLiteEventLog, connect

T0 = 1_790_000_000_000_000
MINUTE = 60_000_000


def event(i: int, status: int = 200) -> Event:
    return Event(
        event_id=f"req_{i:024x}",
        ts_us=T0 + i * 7_000_000,  # 7 s apart: several events per minute, over several minutes
        endpoint="/v1/chat/completions",
        request_raw=b"{}",
        account_id=f"acc{i % 4}",
        status=status,
        prompt_tokens=10 + i,
        completion_tokens=None if i % 5 == 0 else 20,
    )


def statuses(i: int) -> int:
    return 429 if i % 9 == 0 else 502 if i % 11 == 0 else 403 if i % 13 == 0 else 200


def from_events(conn: sqlite3.Connection) -> tuple[list[tuple[int, ...]], list[tuple[object, ...]]]:
    minutes = conn.execute(
        "SELECT ts_us - ts_us % 60000000, count(*), sum(status >= 500), sum(status IN (403, 429)),"
        " sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0)) FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    accounts = conn.execute(
        "SELECT account_id, count(*), sum(status >= 500), sum(status IN (403, 429)),"
        " sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0)), min(ts_us), max(ts_us)"
        " FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return minutes, accounts


def rollups(conn: sqlite3.Connection) -> tuple[list[tuple[int, ...]], list[tuple[object, ...]]]:
    return (
        conn.execute("SELECT * FROM traffic_minutes ORDER BY minute_us").fetchall(),
        conn.execute("SELECT * FROM account_traffic ORDER BY account_id").fetchall(),
    )


def test_rollups_count_each_stored_event_once(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig(batch_size=16))
    for i in range(200):
        log.submit(event(i, statuses(i)))
    for i in range(0, 200, 3):  # a retried delivery: the same ids again are ignored, and not counted
        log.submit(event(i, statuses(i)))
    log.flush()
    log.close()
    conn = connect(tmp_path / EVENTS_DB)
    assert rollups(conn) == from_events(conn)
    minutes, accounts = rollups(conn)
    assert sum(m[1] for m in minutes) == 200 and len(accounts) == 4
    assert sum(m[2] for m in minutes) > 0 and sum(m[3] for m in minutes) > 0  # errors and refusals both seen
    assert all(m[0] % MINUTE == 0 for m in minutes)


def test_an_older_log_gets_its_rollups_filled_once(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_DB
    log = SQLiteEventLog(tmp_path, EventsConfig())
    for i in range(120):
        log.submit(event(i, statuses(i)))
    log.flush()
    log.close()
    with sqlite3.connect(path) as old:  # as a log written before the rollups existed
        old.executescript("DROP TABLE traffic_minutes; DROP TABLE account_traffic;")
    conn = connect(path)
    assert rollups(conn) == from_events(conn)
    conn.close()
    conn = connect(path)  # opening it again neither fills nor counts anything twice
    assert sum(m[1] for m in rollups(conn)[0]) == 120
    conn.close()


def test_an_event_twice_in_one_batch_is_stored_and_counted_once(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path, EventsConfig(batch_size=64))
    for i in (1, 2, 1, 3, 2):
        log.submit(event(i))
    log.flush()
    assert log.count() == 3
    log.close()
    conn = connect(tmp_path / EVENTS_DB)
    assert rollups(conn) == from_events(conn) and sum(m[1] for m in rollups(conn)[0]) == 3
    conn.close()
