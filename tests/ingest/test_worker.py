"""The ingest worker: every event archived exactly once, through crashes between commit and acknowledgement,
claims of a dead worker's entries, several workers in one group, and trimmed or malformed entries."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import redis

from distillguard.config import EventsConfig
from distillguard.detect.features import CLOCK_MODEL_CAP
from distillguard.detect.scorer import OnlineScorer
from distillguard.detect.shared_scorer import SharedOnlineScorer
from distillguard.detect.shared_state import RedisAccountStates
from distillguard.detect.state_codec import decode
from distillguard.events.stream import RedisStreamSink
from distillguard.ingest.archive import read_archive
from distillguard.ingest.verdicts import JsonlVerdicts, RedisVerdicts, Scoring
from distillguard.ingest.worker import IngestOptions, IngestWorker
from tests.ingest.events import BASE_US, make_event
from tests.support.processes import cli
from tests.support.servers import Redis

STREAM = "distillguard:events"
HOUR_US = 3_600_000_000


class Crash(Exception):
    """Stands for the process dying at this point."""


def preload(server: Redis, n: int, signals: bool = False, start: int = 0, spread_hours: int = 1) -> list[str]:
    sink = RedisStreamSink(EventsConfig(sink="redis", stream_url=server.url, batch_size=500))
    ids = []
    for i in range(start, start + n):
        event = make_event(i, ts_us=BASE_US + (i % spread_hours) * HOUR_US + i, signals=signals)
        sink.submit(event)
        ids.append(event.event_id)
    assert sink.flush()
    sink.close()
    return ids


def worker(
    server: Redis, out: Path | None, consumer: str = "w1", scoring: Scoring | None = None, **options: Any
) -> IngestWorker:
    opts = IngestOptions(stream_url=server.url, out=out, consumer=consumer, **{"batch": 100, **options})
    return IngestWorker(opts, scoring=scoring)


def archived_ids(out: Path) -> Counter[str]:
    return Counter(read_archive(out, ["event_id"]).column("event_id").to_pylist())


def pending(server: Redis) -> int:
    return int(redis.Redis.from_url(server.url).xpending(STREAM, "ingest")["pending"])


def test_every_event_is_archived_once_in_its_hour_partition(redis_server: Redis, tmp_path: Path) -> None:
    ids = preload(redis_server, 1000, spread_hours=3)
    w = worker(redis_server, tmp_path)
    stats = w.run(until_idle=True)
    assert archived_ids(tmp_path) == Counter(ids)
    hours = {p.parent.name for p in tmp_path.rglob("part-*.parquet")}
    assert len(hours) == 3
    assert stats.archived == 1000 and stats.signals_computed == 1000 and pending(redis_server) == 0
    w.close()


def test_events_that_carry_signals_are_not_recomputed(redis_server: Redis, tmp_path: Path) -> None:
    preload(redis_server, 200, signals=True)
    w = worker(redis_server, tmp_path)
    stats = w.run(until_idle=True)
    assert stats.archived == 200 and stats.signals_computed == 0
    assert read_archive(tmp_path, ["sig_template_id"]).column("sig_template_id").null_count == 0
    w.close()


def test_a_crash_between_commit_and_ack_duplicates_nothing_on_restart(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = preload(redis_server, 450)
    first = worker(redis_server, tmp_path)
    calls = 0
    real_xack = first.client.xack

    def xack_then_die(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Crash  # the third batch is archived, never acknowledged
        return real_xack(*args)

    monkeypatch.setattr(first.client, "xack", xack_then_die)
    with pytest.raises(Crash):
        first.run(until_idle=True)
    assert sum(archived_ids(tmp_path).values()) == 300 and pending(redis_server) == 100
    restarted = worker(redis_server, tmp_path)  # same consumer name: reads its own pending entries first
    stats = restarted.run(until_idle=True)
    assert archived_ids(tmp_path) == Counter(ids)
    assert stats.duplicates == 100 and pending(redis_server) == 0
    restarted.close()


def test_another_worker_claims_a_dead_workers_entries_without_duplicating(
    redis_server: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = preload(redis_server, 250)
    dead = worker(redis_server, tmp_path, consumer="dead")

    def die(*_: Any) -> Any:
        raise Crash

    monkeypatch.setattr(dead.client, "xack", die)
    with pytest.raises(Crash):
        dead.run(until_idle=True)
    survivor = worker(redis_server, tmp_path, consumer="survivor", claim_idle_s=0.001)
    stats = survivor.run(until_idle=True)
    assert archived_ids(tmp_path) == Counter(ids)
    assert stats.duplicates == 100 and pending(redis_server) == 0


def test_a_worker_whose_entries_were_claimed_publishes_nothing(redis_server: Redis, tmp_path: Path) -> None:
    ids = preload(redis_server, 50)
    slow = worker(redis_server, tmp_path, consumer="slow")
    slow.ensure_group()
    entries = slow._read(">", 100, None)
    other = worker(redis_server, tmp_path, consumer="other")
    _, claimed, _ = other.client.xautoclaim(STREAM, "ingest", "other", 0, "0-0", count=100)
    slow._commit(entries, redelivered=False)  # stalled past the claim: finds the entries gone, writes nothing
    assert read_archive(tmp_path).num_rows == 0
    other._commit(claimed, redelivered=True)
    assert archived_ids(tmp_path) == Counter(ids) and pending(redis_server) == 0


def test_workers_of_one_group_split_the_stream_without_duplicates(redis_server: Redis, tmp_path: Path) -> None:
    ids = preload(redis_server, 3000, signals=True)
    workers = [worker(redis_server, tmp_path, consumer=f"w{i}", batch=50) for i in range(3)]
    for w in workers:
        w.ensure_group()
    threads = [threading.Thread(target=w.run, kwargs={"until_idle": True}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert archived_ids(tmp_path) == Counter(ids)
    assert sum(w.stats.archived for w in workers) == 3000


def test_trimmed_and_malformed_entries_are_counted_and_acknowledged(redis_server: Redis, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url)
    ids = preload(redis_server, 10)
    client.xadd(STREAM, {"event_id": "x", "event": b"not json"})
    client.xadd(STREAM, {"event_id": "y", "event": orjson.dumps({"event_id": "y"})})  # no ts, account, request
    w = worker(redis_server, tmp_path, batch=5)
    w.ensure_group()
    w._read(">", 5, None)  # delivered, then the worker dies before committing
    client.xtrim(STREAM, maxlen=7, approximate=False)  # and MAXLEN takes three of them meanwhile
    stats = worker(redis_server, tmp_path, batch=5).run(until_idle=True)
    assert stats.trimmed == 5 and stats.rejected == 2
    assert archived_ids(tmp_path) == Counter(ids[5:])
    rejected = (tmp_path / "_rejected" / "w1.jsonl").read_text().splitlines()
    assert [orjson.loads(line)["raw"] for line in rejected] == ["not json", '{"event_id":"y"}']
    assert pending(redis_server) == 0


def test_the_same_event_twice_in_a_batch_is_archived_once(redis_server: Redis, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url)
    event = make_event(1)
    for _ in range(2):
        client.xadd(STREAM, {"event_id": event.event_id, "event": orjson.dumps(event.to_json())})
    stats = worker(redis_server, tmp_path).run(until_idle=True)
    assert archived_ids(tmp_path) == Counter([event.event_id]) and stats.duplicates == 1


def test_scoring_writes_each_rescored_accounts_verdict(redis_server: Redis, tmp_path: Path) -> None:
    preload(redis_server, 140, signals=True)
    client = redis.Redis.from_url(redis_server.url)
    to_redis = Scoring(OnlineScorer(rescore_every=4), RedisVerdicts(client, "w1"))
    worker(redis_server, tmp_path / "archive", scoring=to_redis).run(until_idle=True)
    verdicts = cast(dict[bytes, bytes], client.hgetall("distillguard:verdicts"))
    stored = {k.decode(): orjson.loads(v) for k, v in verdicts.items()}
    assert set(stored) == {f"acct_{i}" for i in range(7)}
    assert all(v["events"] == 20 and v["verdict"] == "allow" and v["source"] == "w1" for v in stored.values())

    to_file = Scoring(OnlineScorer(rescore_every=4), JsonlVerdicts(tmp_path / "verdicts.jsonl", "w2"))
    scorer_only = worker(redis_server, None, consumer="w2", group="scoring", scoring=to_file)
    scorer_only.run(until_idle=True)  # a group of its own reads the whole stream again
    scorer_only.close()
    lines = [orjson.loads(line) for line in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
    assert {line["account_id"] for line in lines} == set(stored)


def test_workers_of_one_group_score_each_account_on_all_its_events_through_the_shared_state(
    redis_server: Redis, tmp_path: Path
) -> None:
    def scoring(consumer: str) -> Scoring:
        states = RedisAccountStates(redis.Redis.from_url(redis_server.url), "ingest", 3600, CLOCK_MODEL_CAP)
        return Scoring(
            SharedOnlineScorer(OnlineScorer(rescore_every=4), states),
            JsonlVerdicts(tmp_path / f"{consumer}.jsonl", consumer),
        )

    # Each worker of the group reads half of every account's events (10 of its 20).
    preload(redis_server, 70, signals=True)
    worker(redis_server, None, consumer="w1", scoring=scoring("w1")).run(until_idle=True)
    preload(redis_server, 70, signals=True, start=70)
    worker(redis_server, None, consumer="w2", scoring=scoring("w2")).run(until_idle=True)
    client = redis.Redis.from_url(redis_server.url)
    for i in range(7):
        doc, packed = client.hmget(f"ingest:acct:acct_{i}", ["s", "c"])
        assert isinstance(doc, bytes) and isinstance(packed, bytes)
        assert decode(doc, packed).events == 20
    last = {}
    for line in (tmp_path / "w2.jsonl").read_text().splitlines():
        row = orjson.loads(line)
        last[row["account_id"]] = row["events"]
    assert last == {f"acct_{i}": 20 for i in range(7)}


def test_events_that_do_not_fit_the_archive_are_set_aside_and_the_rest_archived(
    redis_server: Redis, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    good = [make_event(i, signals=True).to_json() for i in range(6)]
    wrong_status = {**good[1], "response": {**good[1]["response"], "status": "200"}}  # another producer's types
    not_an_object = {**good[2], "client": "203.0.113.7"}
    retyped = {**good[3], "signals": {**good[3]["signals"], "depth": "3"}}  # signals of the wrong types: recomputed
    for event in (good[0], wrong_status, not_an_object, retyped, good[4], good[5]):
        client.xadd(STREAM, {"event_id": event["event_id"], "event": orjson.dumps(event)})
    stats = worker(redis_server, tmp_path).run(until_idle=True)
    archived = [good[0], retyped, good[4], good[5]]
    assert archived_ids(tmp_path) == Counter(e["event_id"] for e in archived)
    assert stats.rejected == 2 and stats.signals_computed == 1 and pending(redis_server) == 0
    depth = dict(zip(*read_archive(tmp_path, ["event_id", "sig_depth"]).to_pydict().values(), strict=True))
    assert depth[retyped["event_id"]] == good[3]["signals"]["depth"]
    lines = [orjson.loads(line) for line in (tmp_path / "_rejected" / "w1.jsonl").read_text().splitlines()]
    assert [(orjson.loads(line["raw"])["event_id"], line["reason"][:16]) for line in lines] == [
        (not_an_object["event_id"], "client is not an"),
        (wrong_status["event_id"], "response.status:"),
    ]


def test_a_worker_leaves_the_garbage_collector_as_it_found_it(redis_server: Redis, tmp_path: Path) -> None:
    import gc

    preload(redis_server, 50, signals=True)
    assert gc.isenabled()
    worker(redis_server, tmp_path).run(until_idle=True)
    assert gc.isenabled()
    gc.disable()
    try:
        worker(redis_server, tmp_path, consumer="w2", group="again").run(until_idle=True)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_shared_state_scoring_needs_a_state_url(tmp_path: Path) -> None:
    done = cli(
        "ingest",
        "--stream-url",
        "redis://127.0.0.1:1/0",
        "--verdicts",
        "redis",
        "--shared-state",
        data_dir=tmp_path,
        check=False,
    )
    assert done.returncode != 0 and "--shared-state needs --verdicts and detect.state_url" in done.stderr
