"""The traffic rollups the ingest workers keep in the state store: every archived event counted exactly once, per
minute and per account, through crashes between publishing and counting and between counting and acknowledging,
claims of a dead worker's entries, and two workers counting one file; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import redis
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError

from distillguard.config import EventsConfig
from distillguard.events.rollups import MINUTE_US
from distillguard.events.schema import Event
from distillguard.events.stream import RedisStreamSink
from distillguard.ingest import worker as worker_module
from distillguard.ingest.archive import part_files, read_archive
from distillguard.ingest.rollups import COLUMNS, KEEP_FILES, StoreRollups
from distillguard.ingest.worker import IngestOptions, IngestWorker
from distillguard.store.migrate import upgrade
from distillguard.store.schema import account_hours, account_traffic, rollup_files, traffic_minutes
from distillguard.store.state import store_engine
from tests.ingest.events import BASE_US, make_event
from tests.ingest.test_worker import STREAM, Crash, archived_ids, pending
from tests.support.processes import cli
from tests.support.servers import Redis

STATUSES = (200, 200, 200, 429, 403, 503, 200, 500)
HOUR_US = 3_600_000_000


def varied(i: int) -> Event:
    """Calls of 11 accounts over three hours, some refused (403, 429) or failed (5xx), some without token counts."""
    event = make_event(i, ts_us=BASE_US + (i % 3) * 3_600_000_000 + i * 7_000_000, account=f"acct_{i % 11}")
    event.status = STATUSES[i % len(STATUSES)]
    if event.status != 200:
        event.prompt_tokens = event.completion_tokens = None
    return event


def send(server: Redis, events: list[Event]) -> None:
    sink = RedisStreamSink(EventsConfig(sink="redis", stream_url=server.url, batch_size=500))
    for event in events:
        sink.submit(event)
    assert sink.flush()
    sink.close()


def rollup_engine(tmp_path: Path, url: str | None = None) -> Engine:
    engine = store_engine(tmp_path, url)
    upgrade(engine)
    return engine


def die_at(monkeypatch: pytest.MonkeyPatch, owner: Any, method: str, nth: int) -> list[int]:
    """Make the ``nth`` call of ``owner.method`` (and any later one) raise :class:`Crash`, as if the process died
    there; the list returned counts the calls."""
    calls = [0]
    real = getattr(owner, method)

    def maybe_die(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] >= nth:
            raise Crash
        return real(*args)

    monkeypatch.setattr(owner, method, maybe_die)
    return calls


def loaded(server: Redis, tmp_path: Path, n: int) -> tuple[list[Event], Engine, Path]:
    """``n`` calls on the stream, an empty SQLite store for the rollups, and where the archive goes."""
    events = [varied(i) for i in range(n)]
    send(server, events)
    return events, rollup_engine(tmp_path), tmp_path / "archive"


def worker(server: Redis, out: Path, engine: Engine, consumer: str = "w1", **options: Any) -> IngestWorker:
    opts = IngestOptions(stream_url=server.url, out=out, consumer=consumer, **{"batch": 100, **options})
    return IngestWorker(opts, rollups=StoreRollups(engine, out))


Rollups = tuple[dict[Any, tuple[int, ...]], dict[Any, tuple[int, ...]], dict[Any, tuple[int, ...]]]


def expected(events: list[Event], out: Path) -> Rollups:
    """What the rollups should hold for ``events``, counted one by one (with the times their stream entries were
    appended at, as the archive at ``out`` says)."""
    archived = read_archive(out, ["event_id", "stream_id"]).to_pydict()
    appended = {e: int(s.split("-")[0]) for e, s in zip(archived["event_id"], archived["stream_id"], strict=True)}
    minutes: dict[int, list[int]] = {}
    accounts: dict[str, list[int]] = {}
    hours: dict[tuple[str, int], list[int]] = {}
    for e in events:
        row = [1, int(e.status >= 500), int(e.status in (403, 429)), e.prompt_tokens or 0, e.completion_tokens or 0]
        minute = minutes.setdefault(e.ts_us - e.ts_us % MINUTE_US, [0] * 5)
        account = accounts.setdefault(e.account_id, [0] * 5 + [e.ts_us, e.ts_us])
        at = appended[e.event_id]
        hour = hours.setdefault((e.account_id, e.ts_us - e.ts_us % HOUR_US), [0] * 5 + [at, at])
        for i, v in enumerate(row):
            minute[i] += v
            account[i] += v
            hour[i] += v
        account[5], account[6] = min(account[5], e.ts_us), max(account[6], e.ts_us)
        hour[5], hour[6] = min(hour[5], at), max(hour[6], at)
    return (
        {k: tuple(v) for k, v in minutes.items()},
        {k: tuple(v) for k, v in accounts.items()},
        {k: tuple(v) for k, v in hours.items()},
    )


def stored(engine: Engine) -> Rollups:
    with engine.connect() as conn:
        minutes = {r[0]: tuple(r[1:]) for r in conn.execute(select(traffic_minutes))}
        accounts = {r[0]: tuple(r[1:]) for r in conn.execute(select(account_traffic))}
        hours = {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(select(account_hours))}
    return minutes, accounts, hours


def test_every_archived_event_is_counted_once_per_minute_and_per_account(
    redis_server: Redis, tmp_path: Path, store_url: str
) -> None:
    events = [varied(i) for i in range(600)]
    send(redis_server, events)
    client = redis.Redis.from_url(redis_server.url)
    client.xadd(STREAM, {"event_id": "x", "event": b"not json"})  # rejected: not counted
    twice = events[5]  # the same event again, in the last batch with it: archived once, counted once
    client.xadd(STREAM, {"event_id": twice.event_id, "event": orjson.dumps(twice.to_json())})
    engine = rollup_engine(tmp_path, store_url)
    w = worker(redis_server, tmp_path / "archive", engine, batch=1000)
    stats = w.run(until_idle=True)
    w.close()
    assert stats.archived == 600 and stats.rejected == 1 and stats.duplicates == 1
    assert stored(engine) == expected(events, tmp_path / "archive")
    assert stats.rollup_files == len(part_files(tmp_path / "archive")) == 4  # one batch over four hours
    engine.dispose()


def test_a_crash_between_counting_and_acknowledging_counts_nothing_twice(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, engine, out = loaded(redis_server, tmp_path, 450)
    first = worker(redis_server, out, engine)
    die_at(monkeypatch, first.client, "xack", 3)  # the third batch is archived and counted, never acknowledged
    with pytest.raises(Crash):
        first.run(until_idle=True)
    assert pending(redis_server) == 100 and sum(stored(engine)[1][a][0] for a in stored(engine)[1]) == 300
    restarted = worker(redis_server, out, engine)  # reads its pending entries again: all archived and counted
    stats = restarted.run(until_idle=True)
    restarted.close()
    assert stats.duplicates == 100 and pending(redis_server) == 0
    assert archived_ids(out) == Counter(e.event_id for e in events)
    assert stored(engine) == expected(events, out)


def test_a_crash_between_publishing_and_counting_is_counted_when_the_entries_come_again(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, engine, out = loaded(redis_server, tmp_path, 450)
    first = worker(redis_server, out, engine)
    assert first.rollups is not None
    calls = die_at(monkeypatch, first.rollups, "apply", 4)  # the second batch's files are published, not counted
    with pytest.raises(Crash):
        first.run(until_idle=True)
    published = len(part_files(out))
    counted_before = sum(v[0] for v in stored(engine)[1].values())
    assert counted_before < sum(archived_ids(out).values())  # the gap the restart must close, and only once
    restarted = worker(redis_server, out, engine)
    stats = restarted.run(until_idle=True)
    restarted.close()
    assert stats.duplicates > 0 and stats.rollup_files == len(part_files(out)) - (calls[0] - 1)
    assert len(part_files(out)) > published and pending(redis_server) == 0
    assert stored(engine) == expected(events, out)


def test_the_worker_that_claims_a_dead_workers_entries_counts_its_uncounted_files(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, engine, out = loaded(redis_server, tmp_path, 250)
    dead = worker(redis_server, out, engine, consumer="dead")
    assert dead.rollups is not None
    die_at(monkeypatch, dead.rollups, "apply", 1)  # its first batch's files are published, never counted
    with pytest.raises(Crash):
        dead.run(until_idle=True)
    assert stored(engine) == ({}, {}, {}) and len(part_files(out)) > 0
    survivor = worker(redis_server, out, engine, consumer="survivor", claim_idle_s=0.001)
    survivor.run(until_idle=True)
    survivor.close()
    assert pending(redis_server) == 0 and stored(engine) == expected(events, out)


def test_a_store_outage_while_counting_is_retried_and_counts_each_file_once(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, engine, out = loaded(redis_server, tmp_path, 300)
    w = worker(redis_server, out, engine)
    assert w.rollups is not None
    real_apply, calls = w.rollups.apply, [0]

    def flaky(*args: Any) -> bool:
        calls[0] += 1
        if calls[0] in (2, 3):  # mid-batch (a file counted, the next not), then again while catching up
            raise OperationalError("INSERT INTO rollup_files", {}, Exception("database is locked"))
        return real_apply(*args)

    monkeypatch.setattr(w.rollups, "apply", flaky)
    monkeypatch.setattr(worker_module, "REDIS_RETRY_S", 0.01)
    w.run(until_idle=True)
    w.close()
    assert w.metrics.store_errors._value.get() == 2 and pending(redis_server) == 0
    assert archived_ids(out) == Counter(e.event_id for e in events)
    assert stored(engine) == expected(events, out)


def test_two_workers_counting_the_same_file_at_once_count_it_once(tmp_path: Path, store_url: str) -> None:
    engine = rollup_engine(tmp_path, store_url)
    out = tmp_path / "archive"
    events = [varied(i) for i in range(40)]
    from distillguard.ingest.archive import Archive, Record, partition_of

    records = [Record(f"{1_795_000_000_000 + i}-0", e.to_json(), e.ts_us) for i, e in enumerate(events[::3])]
    staged = Archive(out).stage(partition_of(records[0].ts_us), records)
    path = staged.publish()
    table = pq.read_table(path, columns=list(COLUMNS))
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def count() -> None:
        rollups = StoreRollups(engine, out)
        barrier.wait()
        results.append(rollups.apply(path, table))

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert stored(engine) == expected(events[::3], out)
    assert StoreRollups(engine, out).unapplied([path]) == []
    engine.dispose()


def test_counted_files_are_forgotten_once_none_of_their_entries_can_come_again(
    redis_server: Redis, tmp_path: Path
) -> None:
    send(redis_server, [varied(i) for i in range(300)])
    engine = rollup_engine(tmp_path)
    out = tmp_path / "archive"
    w = worker(redis_server, out, engine)
    w.run(until_idle=True)
    with engine.connect() as conn:
        assert conn.execute(select(rollup_files.c.path)).scalars().all() != []  # an hour has not passed
    with engine.begin() as conn:
        conn.execute(update(rollup_files).values(applied_at=rollup_files.c.applied_at - 2 * KEEP_FILES))
    # A new batch, read and never acknowledged: its file's row stays, the older ones go.
    send(redis_server, [varied(i) for i in range(300, 400)])
    before = set(part_files(out))
    w.ensure_group()
    entries = w._read(">", 100, None)
    assert w.rollups is not None
    real_xack = w.client.xack
    w.client.xack = lambda *args: 0  # type: ignore[method-assign]
    w._commit(entries, redelivered=False)
    w.client.xack = real_xack  # type: ignore[method-assign]
    w._prune_at = 0.0
    w._prune_rollups()
    with engine.connect() as conn:
        kept = conn.execute(select(rollup_files.c.path)).scalars().all()
    assert sorted(kept) == sorted(p.relative_to(out).as_posix() for p in set(part_files(out)) - before)
    w.close()
    engine.dispose()


def test_the_command_keeps_the_rollups_of_the_store_it_is_given(redis_server: Redis, tmp_path: Path) -> None:
    events = [varied(i) for i in range(120)]
    send(redis_server, events)
    store = f"sqlite:///{tmp_path / 'rollups.db'}"
    base = ["ingest", "--stream-url", redis_server.url, "--until-idle", "--store-url", store]
    cli(*base, "--out", str(tmp_path / "a"), "--no-rollups", "--group", "other", data_dir=tmp_path)
    engine = store_engine(tmp_path, store)
    with engine.connect() as conn:
        assert not engine.dialect.has_table(conn, "rollup_files")  # --no-rollups: the store is never opened
    done = cli(*base, "--out", str(tmp_path / "b"), data_dir=tmp_path)
    assert "files counted into the rollups" in done.stderr
    assert stored(engine) == expected(events, tmp_path / "b")
    engine.dispose()
