"""The Redis limiter against a real redis-server: exact across clients, the same answers as memory, fail modes.

Several :class:`RedisLimiter` instances stand for several gateway processes: each has its own connections, so Redis
interleaves their calls as it would interleave replicas'. Windows are hours long, so that no test straddles a window
edge in practice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
import redis

from distillguard.config import LimitsConfig, LimitSet
from distillguard.gateway.ratelimit_headers import decision_headers
from distillguard.limits import Decision, LimiterUnavailable, RateLimiter, RuleSet
from distillguard.limits.redis import RedisLimiter
from tests.limits.conftest import rules_for
from tests.support.servers import Redis, running_redis

CLIENTS = 4
PAUSE_MS = 3000


@pytest.fixture
def own_redis() -> Iterator[Redis]:
    """A server of the test's own, which it may stop and start."""
    with running_redis() as server:
        yield server


async def test_concurrent_calls_through_several_clients_admit_exactly_the_limit(redis_url: str) -> None:
    clients = [RedisLimiter(redis_url, timeout_s=2.0) for _ in range(CLIENTS)]
    rules = rules_for(LimitSet(requests=["50/hour"]))
    decisions = await asyncio.gather(*(clients[i % CLIENTS].acquire(rules, 0) for i in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.denied_by is not None and d.denied_by.scope == "account" for d in decisions if not d.allowed)
    assert sorted(d.requests.remaining for d in decisions if d.allowed) == list(range(50))  # type: ignore[union-attr]
    for client in clients:
        await client.aclose()


async def test_a_refusal_by_one_rule_takes_nothing_from_the_others_across_clients(redis_url: str) -> None:
    """Two accounts of one org call at once through four clients: the org limit admits 30, and the accounts'
    own windows hold only what was admitted."""
    clients = [RedisLimiter(redis_url, timeout_s=2.0) for _ in range(CLIENTS)]
    org = LimitSet(requests=["30/hour"])
    per_account = {a: rules_for(LimitSet(requests=["100/hour"]), org, a, "o") for a in ("a1", "a2")}
    calls = [clients[i % CLIENTS].acquire(per_account["a1" if i % 2 else "a2"], 0) for i in range(120)]
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 30
    remaining = 0
    for rules in per_account.values():
        account_state, _ = await clients[0].state(RuleSet(rules.requests[:1], ()))
        assert account_state is not None and account_state.rule.scope == "account"
        remaining += account_state.remaining
    assert remaining == 200 - 30
    for client in clients:
        await client.aclose()


async def test_a_reservation_taken_in_one_process_is_settled_from_another(redis_url: str) -> None:
    first, second = RedisLimiter(redis_url, timeout_s=2.0), RedisLimiter(redis_url, timeout_s=2.0)
    rules = rules_for(LimitSet(tokens=["1000/hour"]))
    taken = await first.acquire(rules, 600)
    assert taken.allowed and taken.reservation is not None
    _, seen = await second.state(rules)
    assert seen is not None and seen.remaining == 400
    assert not (await second.acquire(rules, 600)).allowed
    first.settle(taken.reservation, 100)
    await first.drain()
    again = await second.acquire(rules, 600)
    assert again.allowed and again.tokens is not None and again.tokens.remaining == 300
    await first.aclose()
    await second.aclose()


def _same(memory: Decision, shared: Decision) -> None:
    assert (memory.allowed, memory.too_large) == (shared.allowed, shared.too_large)
    assert memory.denied_by == shared.denied_by
    for ours, theirs in ((memory.requests, shared.requests), (memory.tokens, shared.tokens)):
        assert (ours is None) == (theirs is None)
        if ours is not None and theirs is not None:
            assert (ours.rule, ours.remaining) == (theirs.rule, theirs.remaining)
            # Both compute from their own clock reading, a moment apart.
            assert ours.reset_s == pytest.approx(theirs.reset_s, abs=1.0)
    if memory.retry_after_s is not None:
        assert shared.retry_after_s == pytest.approx(memory.retry_after_s, abs=1.0)
    headers_memory, headers_shared = decision_headers(memory), decision_headers(shared)
    for name in headers_memory:
        if name.startswith(("x-ratelimit-limit", "x-ratelimit-remaining")):
            assert headers_shared[name] == headers_memory[name]


async def test_the_same_calls_get_the_same_answers_and_headers_as_in_memory(redis_url: str) -> None:
    """Including a well-filled previous window (its weight is what the sliding window is about)."""
    memory, shared = RateLimiter(), RedisLimiter(redis_url, timeout_s=2.0)
    rules = rules_for(LimitSet(requests=["100/hour", "8/hour"], tokens=["2000/hour"]))
    now = time.time()
    previous_requests = memory.storage.sliding_window_keys(rules.requests[0].storage_key, 3600, now)[0]
    previous_tokens = memory.storage.sliding_window_keys(rules.tokens[0].storage_key, 3600, now)[0]
    seed = redis.Redis.from_url(redis_url)
    for key, count in ((previous_requests, 90), (previous_tokens, 1500)):
        memory.storage.incr(key, 7200, count)
        seed.set(f"LIMITS:{key}", count, ex=7200)  # `limits`' prefix, the in-memory layout
    for tokens, used in ((100, 40), (300, 300), (0, 0), (900, 1200), (2500, 0), (50, 10), (200, 20), (200, 20)):
        in_memory, in_redis = await memory.acquire(rules, tokens), await shared.acquire(rules, tokens)
        _same(in_memory, in_redis)
        if in_memory.reservation is not None and in_redis.reservation is not None:
            memory.settle(in_memory.reservation, used)
            shared.settle(in_redis.reservation, used)
            await shared.drain()
    state_memory, state_redis = await memory.state(rules), await shared.state(rules)
    assert [s.remaining for s in state_memory if s] == [s.remaining for s in state_redis if s]
    await memory.aclose()
    await shared.aclose()


async def test_fail_open_admits_unchecked_logs_once_and_recovers(
    own_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_s=0.5, fail_mode="open")
    rules = rules_for(LimitSet(requests=["5/hour"], tokens=["1000/hour"]))
    assert (await limiter.acquire(rules, 10)).allowed
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="distillguard.limits.redis"):
        during = [await limiter.acquire(rules, 10) for _ in range(8)]
        assert all(d.allowed and d.fail_open and d.requests is None for d in during)  # 8 > 5: nothing was counted
        assert not limiter.available and not await limiter.ping()
        limiter.settle(during[0].reservation, 0)  # type: ignore[arg-type]  # nothing was taken: nothing to settle
        assert await limiter.state(rules) == (None, None)
        own_redis.start()  # an empty data set, as after a Redis restart without persistence
        after = await limiter.acquire(rules, 10)
    assert after.allowed and not after.fail_open and after.requests is not None and after.requests.remaining == 4
    assert limiter.available
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1 and sum("available again" in m for m in messages) == 1
    await limiter.aclose()


async def test_fail_closed_refuses_until_redis_is_back(own_redis: Redis) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_s=0.5, fail_mode="closed")
    rules = rules_for(LimitSet(requests=["5/hour"]))
    own_redis.stop()
    for _ in range(3):
        with pytest.raises(LimiterUnavailable):
            await limiter.acquire(rules, 0)
    own_redis.start()
    assert await limiter.ping() and limiter.available
    decision = await limiter.acquire(rules, 0)
    assert decision.allowed and decision.requests is not None and decision.requests.remaining == 4
    await limiter.aclose()


async def test_a_stalled_redis_does_not_hold_calls_and_one_call_at_a_time_probes_it(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, timeout_s=0.1, fail_mode="closed")
    attempts: list[str] = []
    limiter.observe = lambda operation, _seconds: attempts.append(operation)
    rules = rules_for(LimitSet(requests=["5/hour"]))
    assert (await limiter.acquire(rules, 0)).allowed
    admin = redis.Redis.from_url(redis_url, socket_timeout=30)
    admin.client_pause(PAUSE_MS, all=True)  # every client waits, this one included
    # Bounded by the limiter's own timeout, well inside the pause (wait_for would raise TimeoutError instead).
    with pytest.raises(LimiterUnavailable):
        await asyncio.wait_for(limiter.acquire(rules, 0), PAUSE_MS / 1000 / 3)
    attempts.clear()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(limiter.acquire(rules, 0) for _ in range(20)), return_exceptions=True), PAUSE_MS / 1000 / 3
    )
    assert all(isinstance(o, LimiterUnavailable) for o in outcomes)
    assert attempts == ["acquire"]  # one probe reached Redis, the other 19 failed at once
    admin.ping()  # answered when the pause ends
    decision = await limiter.acquire(rules, 0)
    assert decision.allowed and decision.requests is not None and decision.requests.remaining == 3
    await limiter.aclose()


def test_unknown_storage_schemes_are_refused_by_config() -> None:
    with pytest.raises(ValueError, match="unsupported limits storage"):
        LimitsConfig(storage_uri="memcached://127.0.0.1:11211")
