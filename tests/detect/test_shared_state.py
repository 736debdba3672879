"""Account state shared in Redis: the codec, compare-and-set across replicas, the verdict cache, TTLs, outages."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import orjson
import pytest
import redis

from distillguard.config import DetectConfig
from distillguard.detect.features import CLOCK_MODEL_CAP, AccountState
from distillguard.detect.scorer import AccountInfo, OnlineScorer
from distillguard.detect.shared_scorer import SharedOnlineScorer
from distillguard.detect.shared_state import RedisAccountStates, Write
from distillguard.detect.signals import RequestSignals, extract
from distillguard.detect.state_codec import StateCodecError, decode, encode
from distillguard.detect.verdicts import FLAGGED
from distillguard.events.stream import connect
from tests.detect.test_scoring import START_US, casual, harvester
from tests.support.servers import Redis

TTL_S = 3600


@pytest.fixture
def client(redis_server: Redis) -> Iterator[redis.Redis]:
    c = connect(redis_server.url, 2.0)
    yield c
    c.close()


def replica(url: str, max_pending: int = 100_000) -> SharedOnlineScorer:
    """One gateway replica's scorer (rules only: the model is tested elsewhere), with a client of its own."""
    states = RedisAccountStates(connect(url, 2.0), "t", TTL_S, CLOCK_MODEL_CAP)
    return SharedOnlineScorer(OnlineScorer(None, rescore_every=4), states, max_pending)


def calls(make, count: int, gap_s: float = 2.0, seed: int = 0) -> list[tuple[int, RequestSignals]]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    return [(START_US + int(i * gap_s * 1e6), extract(make(i, rng))) for i in range(count)]


def stored_state(client: redis.Redis, account: str) -> AccountState:
    key = f"t:acct:{account}"
    return decode(field(client, key, "s"), field(client, key, "c"))


def field(client: redis.Redis, key: str, name: str) -> bytes:
    value = client.hget(key, name)
    assert isinstance(value, bytes), f"{key} has no {name}"
    return value


def stored_score(client: redis.Redis, account: str) -> dict[str, object]:
    return dict(orjson.loads(field(client, f"t:acct:{account}", "score")))


# the codec ------------------------------------------------------------------------------------------------
def test_codec_round_trips_a_state_exactly_keeping_counter_order() -> None:
    state = AccountState(created_us=START_US - 86_400_000_000, verified=True)
    for i, (ts, sig) in enumerate(calls(harvester, 300) + calls(casual, 40, seed=1)):
        model = "frontier-2" if i > 200 else "frontier-1"
        state.update(ts + i, sig, 429 if i % 50 == 0 else 200, 30 + i, 400, model, START_US if i > 200 else None)
    back = decode(*encode(state))
    assert back == state
    assert list(back.templates.items()) == list(state.templates.items())
    assert list(back.domains.items()) == list(state.domains.items())
    assert back.vector() == state.vector()
    assert back.pivot_model == "frontier-2"


def test_an_encoded_state_stays_bounded_however_much_the_account_sends() -> None:
    state = AccountState()
    sig = extract({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    rng = random.Random(3)
    for i in range(30_000):
        # every call a new template, content, language, system prompt and clock hour: every cap is reached
        varied = RequestSignals(
            **{
                **{f: getattr(sig, f) for f in sig.__dataclass_fields__},
                "template_id": f"{rng.getrandbits(64):016x}",
                "content_sig": rng.getrandbits(64),
                "language": f"l{i}",
                "system_prompt_hash": f"{i:016x}",
            }
        )
        state.update(START_US + i * 3_600_000_000, varied, 200, 10, 10, f"model-{i}", None)
    doc, packed = encode(state)
    assert len(state.contents) == 4096 and len(state.active_hours) == 24 * 366
    assert len(doc) + len(packed) < 120_000
    assert decode(doc, packed) == state


@pytest.mark.parametrize(
    ("doc", "packed"),
    [(b"", b""), (b"not json", b""), (b"[1,2]", b""), (orjson.dumps({"_v": 99}), b""), (orjson.dumps({"_v": 1}), b"")],
)
def test_anything_else_is_refused_as_a_state(doc: bytes, packed: bytes) -> None:
    with pytest.raises(StateCodecError):
        decode(doc, packed)


def test_a_truncated_packed_part_is_refused() -> None:
    state = AccountState()
    for ts, sig in calls(harvester, 20):
        state.update(ts, sig, 200, 1, 1, "m", None)
    doc, packed = encode(state)
    with pytest.raises(StateCodecError):
        decode(doc, packed[:-12])


# replicas ---------------------------------------------------------------------------------------------------
def test_two_replicas_taking_turns_build_exactly_the_state_one_process_builds(
    redis_server: Redis, client: redis.Redis
) -> None:
    a, b = replica(redis_server.url), replica(redis_server.url)
    alone = OnlineScorer(None, rescore_every=4)
    for scorer in (a, b):
        scorer.scorer.set_account("h", AccountInfo(verified=False))
    alone.set_account("h", AccountInfo(verified=False))
    for i, (ts, sig) in enumerate(calls(harvester, 60)):
        serving = a if i % 2 == 0 else b
        serving.observe("h", ts, sig, 200, 50, 400, "frontier-1")
        serving.flush()
        alone.observe("h", ts, sig, 200, 50, 400, "frontier-1")
        alone.flush()
    shared = stored_state(client, "h")
    assert shared.events == 60
    assert shared.vector() == alone._accounts["h"].state.vector()
    # the verdict cache: the newest score, as the process that saw everything scores it
    score = stored_score(client, "h")
    final = alone.score("h")
    assert final is not None and final.verdict in FLAGGED
    assert (score["verdict"], score["events"]) == (final.verdict, 60)


def test_a_replica_adopts_the_verdict_another_wrote(redis_server: Redis) -> None:
    a, b = replica(redis_server.url), replica(redis_server.url)
    for ts, sig in calls(harvester, 40):
        a.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    a.flush()
    flagged = a.score("h")
    assert flagged is not None and flagged.verdict in FLAGGED
    assert b.score("h") is None
    # b serves its first call of the account (not a rescoring point): it loads and adopts a's score
    ts, sig = calls(harvester, 41)[-1]
    b.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    assert b.flush() == [b.score("h")]  # handed on to the response policy
    adopted = b.score("h")
    assert adopted is not None
    assert (adopted.verdict, adopted.events, [r.signal for r in adopted.reasons]) == (
        flagged.verdict,
        40,
        [r.signal for r in flagged.reasons],
    )
    assert b.stats.adopted == 1


def test_an_unreadable_stored_score_is_not_adopted_and_the_account_is_scored_afresh(
    redis_server: Redis, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replica(redis_server.url), replica(redis_server.url)
    for ts, sig in calls(harvester, 40):
        a.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    a.flush()
    client.hset("t:acct:h", "score", b'{"account_id": "h", "risk": "high"}')  # another version, or damaged
    ts, sig = calls(harvester, 41)[-1]
    b.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    assert b.flush() == [] and b.score("h") is None  # not adopted; the round did not raise
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    rescored = b.flush()  # the next round scores it and writes a readable record
    assert [s.account_id for s in rescored] == ["h"] and rescored[0].events == 41
    stored = client.hget("t:acct:h", "score")
    assert stored is not None and orjson.loads(stored)["events"] == 41


def test_concurrent_replicas_lose_no_call(redis_server: Redis, client: redis.Redis) -> None:
    replicas = [replica(redis_server.url) for _ in range(4)]
    sent = calls(harvester, 800, gap_s=0.5)

    def serve(k: int) -> None:
        scorer = replicas[k]
        for i in range(k, len(sent), 4):
            ts, sig = sent[i]
            scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
            if i % 12 < 4:
                scorer.flush()
        while scorer.pending:  # a round that lost the compare-and-set keeps its calls for the next
            scorer.flush()

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = stored_state(client, "h")
    assert state.events == 800 and state.tokens == 800 * 450
    assert int(field(client, "t:acct:h", "v")) == sum(s.stats.rounds - s.stats.conflicts for s in replicas)


def test_state_expires_and_the_clock_keeps_each_models_first_sighting(redis_server: Redis, client: redis.Redis) -> None:
    a, b = replica(redis_server.url), replica(redis_server.url)
    (ts, sig), (ts2, sig2) = calls(casual, 2)
    a.observe("u", ts2, sig2, 200, 5, 5, "m1")
    a.flush()
    b.observe("v", ts, sig, 200, 5, 5, "m1")
    b.flush()
    assert 0 < client.ttl("t:acct:u") <= TTL_S and 0 < client.ttl("t:acct:v") <= TTL_S
    assert int(field(client, "{t:clock}:models", "m1")) == ts
    assert int(client.get("{t:clock}:start") or 0) == ts
    assert b.clock.first_seen["m1"] == ts


# faults -----------------------------------------------------------------------------------------------------
def test_redis_down_buffers_calls_bounded_then_catches_up(redis_server: Redis, client: redis.Redis) -> None:
    scorer = replica(redis_server.url, max_pending=100)
    sent = calls(harvester, 130)
    for ts, sig in sent[:10]:
        scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    scorer.flush()
    redis_server.stop()
    for ts, sig in sent[10:]:
        scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
        if len(sent) % 10 == 0:
            assert scorer.flush() == []
    scorer.flush()
    assert not scorer.stats.redis_up and scorer.stats.failures >= 1
    assert scorer.pending == 100 and scorer.stats.dropped == 20
    assert scorer.score("h") is not None  # requests still see the last verdict
    redis_server.start()  # an empty data set: the state starts again from what was buffered
    scorer.flush()
    assert scorer.stats.redis_up and scorer.pending == 0
    assert stored_state(connect(redis_server.url, 2.0), "h").events == 100


class LostReply(RedisAccountStates):
    """Writes land, but the first reply never comes back."""

    lost = False

    def save(self, writes: list[Write]) -> list[bool]:  # type: ignore[override]
        landed = super().save(writes)
        if not self.lost:
            self.lost = True
            raise redis.ConnectionError("reply lost")
        return landed


def test_a_commit_whose_reply_was_lost_is_neither_lost_nor_counted_twice(
    redis_server: Redis, client: redis.Redis
) -> None:
    states = LostReply(connect(redis_server.url, 2.0), "t", TTL_S, CLOCK_MODEL_CAP)
    scorer = SharedOnlineScorer(OnlineScorer(None, rescore_every=4), states)
    other = replica(redis_server.url)
    sent = calls(harvester, 30)
    for ts, sig in sent[:10]:
        scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    scorer.flush()  # landed, reply lost: the ten calls stay buffered
    assert scorer.pending == 10 and stored_state(client, "h").events == 10
    for ts, sig in sent[10:20]:  # another replica writes meanwhile
        other.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    other.flush()
    for ts, sig in sent[20:]:
        scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    scorer.flush()
    assert scorer.pending == 0
    assert stored_state(client, "h").events == 30


def test_an_unreadable_stored_state_starts_afresh(redis_server: Redis, client: redis.Redis) -> None:
    client.hset("t:acct:h", mapping={"v": 3, "s": b"garbage", "c": b""})
    scorer = replica(redis_server.url)
    ts, sig = calls(harvester, 1)[0]
    scorer.observe("h", ts, sig, 200, 50, 400, "frontier-1")
    scorer.flush()
    assert stored_state(client, "h").events == 1 and client.hget("t:acct:h", "v") == b"4"


def test_state_url_must_be_redis() -> None:
    assert DetectConfig(state_url="redis://127.0.0.1:6379/0").state_url
    with pytest.raises(ValueError, match="state_url"):
        DetectConfig(state_url="http://127.0.0.1:6379")
