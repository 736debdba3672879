"""A rescoring round that raises (the model, partner intel, Redis) strands nothing: the accounts it took, or in the
shared state the calls it took, wait for the next round, which scores them on everything so far; nothing is folded
twice, and a round that keeps failing grows neither the queue nor the buffer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import pytest

from distillguard.detect.features import CLOCK_MODEL_CAP
from distillguard.detect.reasons import Reason
from distillguard.detect.scorer import OnlineScorer
from distillguard.detect.shared_scorer import SharedOnlineScorer
from distillguard.detect.shared_state import RedisAccountStates
from distillguard.detect.signals import extract
from distillguard.events.stream import connect
from tests.detect.test_scoring import START_US, harvester
from tests.detect.test_shared_state import TTL_S, LostReply, stored_state
from tests.support.servers import Redis

Failing = Literal["model", "intel"]


class FlakyModel:
    """Stands in for the learned model: raises on the predictions numbered in ``failing`` (from 1: an
    out-of-memory, a bad vector), answers a fixed risk otherwise."""

    version = "flaky"

    def __init__(self, failing: Sequence[int] | range) -> None:
        self.failing = failing
        self.calls = 0

    def predict_risk(self, vectors: list[list[float]]) -> list[float]:
        self.calls += 1
        if self.calls in self.failing:
            raise RuntimeError("the model ran out of memory")
        return [0.4] * len(vectors)


class FlakyIntel:
    """Partner intel whose first ``failures`` adjustments raise (the intel store mid-reload)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def adjust(self, account_id: str, risk: float, reasons: list[Reason]) -> tuple[float, Reason | None]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("partner intel unavailable")
        return risk, None


def break_once(scorer: OnlineScorer, failing: Failing) -> None:
    """Make the scorer's next round raise: in the model's prediction, or in partner intel's adjustment."""
    if failing == "model":
        scorer.model = FlakyModel([1])  # type: ignore[assignment]
    else:
        scorer.adjuster = FlakyIntel(1)


class Caller:
    """One account's calls, numbered from 0, one second apart."""

    def __init__(self, scorer: OnlineScorer | SharedOnlineScorer, account: str = "h") -> None:
        self.scorer, self.account = scorer, account
        self.rng = random.Random(0)

    def call(self, i: int) -> None:
        signals = extract(harvester(i, self.rng))
        self.scorer.observe(self.account, START_US + i * 1_000_000, signals, 200, 50, 400, "frontier-1")


# in process ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failing", ["model", "intel"])
def test_the_accounts_of_a_failed_round_are_scored_by_the_next(failing: Failing) -> None:
    scorer = OnlineScorer(None, rescore_every=8)
    h = Caller(scorer)
    h.call(0)
    assert [s.events for s in scorer.flush()] == [1]
    h.call(1)  # call 2: a rescoring point
    break_once(scorer, failing)
    with pytest.raises(RuntimeError):
        scorer.flush()
    last = scorer.score("h")
    assert last is not None and last.events == 1  # the verdict stays at the last score meanwhile
    h.call(2)  # call 3 is no rescoring point: only the failed round's account being queued again scores it
    assert [s.events for s in scorer.flush()] == [3]
    assert scorer.flush() == []  # and only once


def test_a_round_that_keeps_failing_queues_each_account_once() -> None:
    """Gateway rounds (take, predict off the loop, complete) fail five times while calls keep arriving, rescoring
    points among them; each account is in every batch once, then scored once on all its calls."""
    model = FlakyModel(range(1, 6))
    scorer = OnlineScorer(model, rescore_every=2)  # type: ignore[arg-type]
    callers = [Caller(scorer, account) for account in ("a", "b", "c")]
    for c in callers:
        c.call(0)
    sent = 1
    for _ in range(5):
        batch = scorer.take()
        assert sorted(batch.accounts) == ["a", "b", "c"]
        for c in callers:
            for i in range(sent, sent + 3):  # served while the batch is being scored
                c.call(i)
        sent += 3
        with pytest.raises(RuntimeError):
            batch.predict()
        scorer.abandon(batch)
    batch = scorer.take()
    assert sorted(batch.accounts) == ["a", "b", "c"]
    batch.predict()
    assert sorted((s.account_id, s.events) for s in scorer.complete(batch)) == [(a, sent) for a in ("a", "b", "c")]
    assert scorer.flush() == []
    assert model.calls == 6


# shared in Redis ------------------------------------------------------------------------------------------------
def shared_replica(url: str, scorer: OnlineScorer, max_pending: int = 100_000) -> SharedOnlineScorer:
    return SharedOnlineScorer(scorer, RedisAccountStates(connect(url, 2.0), "t", TTL_S, CLOCK_MODEL_CAP), max_pending)


@pytest.mark.parametrize("failing", ["model", "intel"])
def test_a_failed_shared_round_keeps_its_calls_for_the_next(redis_server: Redis, failing: Failing) -> None:
    """The model raises in ``load``, partner intel in ``judge``: nothing was written, and the calls stay buffered."""
    in_process = OnlineScorer(None, rescore_every=4)
    break_once(in_process, failing)
    scorer = shared_replica(redis_server.url, in_process)
    client = connect(redis_server.url, 2.0)
    h = Caller(scorer)
    for i in range(10):
        h.call(i)
    with pytest.raises(RuntimeError):
        scorer.flush()
    assert scorer.pending == 10 and not client.exists("t:acct:h")
    h.call(10)
    [score] = scorer.flush()
    assert (score.account_id, score.events) == ("h", 11) and scorer.score("h") == score
    assert scorer.pending == 0 and stored_state(client, "h").events == 11


def test_a_failed_round_after_a_lost_commit_reply_folds_nothing_twice(redis_server: Redis) -> None:
    """The first commit lands but its reply is lost; the next round's load sees that, then its model raises: only
    the calls served since go back, and the third round stores each call once."""
    states = LostReply(connect(redis_server.url, 2.0), "t", TTL_S, CLOCK_MODEL_CAP)
    scorer = SharedOnlineScorer(OnlineScorer(FlakyModel([2]), rescore_every=4), states)  # type: ignore[arg-type]
    client = connect(redis_server.url, 2.0)
    h = Caller(scorer)
    for i in range(10):
        h.call(i)
    assert scorer.flush() == []  # landed, reply lost: the ten calls stay buffered
    assert scorer.pending == 10 and stored_state(client, "h").events == 10
    for i in range(10, 15):
        h.call(i)
    with pytest.raises(RuntimeError):
        scorer.flush()
    assert scorer.pending == 5  # the ten that landed are known to have
    [score] = scorer.flush()
    assert score.events == 15 and stored_state(client, "h").events == 15 and scorer.pending == 0


def round_with_calls_arriving(scorer: SharedOnlineScorer, h: Caller, arriving: range) -> None:
    """One round as the gateway runs it, with calls served while its load is off the event loop."""
    rnd = scorer.take()
    for i in arriving:
        h.call(i)
    try:
        scorer.load(rnd)
        scorer.judge(rnd)
        scorer.commit(rnd)
    except RuntimeError:
        scorer.abandon(rnd)
        return
    assert scorer.settle(rnd) == []  # Redis is down


@pytest.mark.parametrize("cause", ["model", "redis"])
def test_rounds_that_keep_failing_keep_the_buffer_bounded(redis_server: Redis, cause: str) -> None:
    """Each failed round hands its calls back while more arrive: the buffer holds the oldest ``max_pending`` calls
    (those of the round in flight included), drops and counts the rest, and catches up once the cause is gone."""
    model = FlakyModel(range(1, 1_000) if cause == "model" else [])
    scorer = shared_replica(redis_server.url, OnlineScorer(model, rescore_every=4), max_pending=100)  # type: ignore[arg-type]
    h = Caller(scorer)
    for i in range(40):
        h.call(i)
    if cause == "redis":
        redis_server.stop()
    for r in range(5):
        round_with_calls_arriving(scorer, h, range(40 + 60 * r, 100 + 60 * r))
        assert scorer.pending <= 100
    assert (scorer.pending, scorer.stats.dropped) == (100, 340 - 100)
    if cause == "redis":
        assert not scorer.stats.redis_up
        redis_server.start()  # an empty data set: the state starts again from what was buffered
    else:
        model.failing = []
    [score] = scorer.flush()
    assert score.events == 100 and scorer.pending == 0
    assert stored_state(connect(redis_server.url, 2.0), "h").events == 100
