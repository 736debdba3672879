"""Limiters to test: every behavioural test of the limiter runs on memory and on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from distillguard.config import LimitsConfig, LimitSet, TierLimits
from distillguard.limits import Limiter, RateLimiter, RuleSet, resolve_rules
from distillguard.limits.redis import RedisLimiter
from distillguard.store.models import Account
from tests.support.servers import Redis, running_redis


def rules_for(
    account: LimitSet, org: LimitSet | None = None, account_id: str = "a", org_id: str | None = None
) -> RuleSet:
    """Key ``k`` of ``account_id``: the account's limits, and ``org``'s if it belongs to ``org_id``."""
    config = LimitsConfig(tiers={"t": TierLimits(account=account, org=org or LimitSet())}, default_tier="t")
    return resolve_rules(config, "k", Account(account_id, org_id=org_id))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Redis) -> str:
    """The shared server's URL, emptied for this test."""
    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        made: Limiter = RateLimiter()
    else:
        made = RedisLimiter(request.getfixturevalue("redis_url"), timeout_s=1.0, fail_mode="closed")
    yield made
    await made.aclose()
