"""The limiter: exact admission, all-or-nothing across rules, token settlement, retry arithmetic.

The tests taking the ``limiter`` fixture run on the in-memory limiter and on the Redis one (tests/limits/conftest.py).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distillguard.config import LimitsConfig, LimitSet, TierLimits
from distillguard.limits import Limiter, resolve_rules
from distillguard.limits.limiter import seconds_until_available
from distillguard.store.models import Account
from tests.limits.conftest import rules_for


async def test_exactly_the_limit_is_admitted(limiter: Limiter) -> None:
    rules = rules_for(LimitSet(requests=["5/minute"]))
    decisions = [await limiter.acquire(rules, 0) for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 7
    assert [d.requests.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]  # type: ignore[union-attr]
    refused = decisions[5]
    assert refused.denied_by is not None and refused.denied_by.scope == "account"
    assert refused.retry_after_s is not None and 0 < refused.retry_after_s <= 120


async def test_a_refusal_takes_nothing_from_the_other_rules(limiter: Limiter) -> None:
    rules = rules_for(LimitSet(requests=["10/minute"]), LimitSet(requests=["2/minute"]), org_id="o")
    assert [(await limiter.acquire(rules, 0)).allowed for _ in range(4)] == [True, True, False, False]
    account_state, _ = await limiter.state(rules_for(LimitSet(requests=["10/minute"])))
    assert account_state is not None and account_state.remaining == 8  # the two refusals were given back


async def test_token_reservation_is_settled_to_actual_usage(limiter: Limiter) -> None:
    rules = rules_for(LimitSet(tokens=["1000/minute"]))
    first = await limiter.acquire(rules, 600)
    assert first.allowed and first.tokens is not None and first.tokens.remaining == 400
    assert not (await limiter.acquire(rules, 600)).allowed
    assert first.reservation is not None
    limiter.settle(first.reservation, 100)  # only 100 were used
    await limiter.drain()
    second = await limiter.acquire(rules, 600)
    assert second.allowed and second.tokens is not None and second.tokens.remaining == 300
    assert second.reservation is not None
    limiter.settle(second.reservation, 800)  # overran its reservation: charged anyway
    await limiter.drain()
    _, tokens = await limiter.state(rules)
    assert tokens is not None and tokens.remaining == 100


async def test_a_call_larger_than_the_limit_is_marked_too_large(limiter: Limiter) -> None:
    decision = await limiter.acquire(rules_for(LimitSet(tokens=["100/minute"])), 101)
    assert not decision.allowed and decision.too_large


def test_override_replaces_tier_account_limits() -> None:
    config = LimitsConfig(tiers={"t": TierLimits(account=LimitSet(requests=["1/minute"]))}, default_tier="t")
    rules = resolve_rules(config, "k", Account("a", limits_override={"requests": ["3/minute"]}))
    assert [r.item.amount for r in rules.requests] == [3]
    no_org = resolve_rules(config, "k", Account("a"))
    assert all(r.scope != "org" for r in no_org.requests + no_org.tokens)


def test_unknown_tier_falls_back_to_default() -> None:
    config = LimitsConfig(tiers={"t": TierLimits(account=LimitSet(requests=["1/minute"]))}, default_tier="t")
    assert [r.item.amount for r in resolve_rules(config, "k", Account("a", tier="gone")).requests] == [1]


def test_bad_limit_strings_are_rejected_by_config() -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        LimitSet(requests=["lots per minute"])


def _weighted(previous: int, previous_ttl: float, current: int, expiry: float) -> float:
    return previous * previous_ttl / expiry + current


@given(
    previous=st.integers(0, 1000),
    elapsed_in_window=st.floats(0, 59.999),
    current=st.integers(0, 1000),
    limit=st.integers(1, 1000),
    cost=st.integers(1, 1000),
)
def test_waiting_the_returned_time_makes_room(
    previous: int, elapsed_in_window: float, current: int, limit: int, cost: int
) -> None:
    """Simulate the window after the wait: the cost must then fit (and not before, when the wait is positive)."""
    expiry = 60.0
    previous_ttl = expiry - elapsed_in_window
    current_ttl = expiry - elapsed_in_window + expiry
    if previous > limit or current > limit:
        return
    wait = seconds_until_available(previous, previous_ttl, current, current_ttl, expiry, limit, cost)
    if cost > limit:
        assert math.isinf(wait)
        return
    t = elapsed_in_window + wait + 1e-6
    if t < expiry:  # still in the same window
        used = _weighted(previous, expiry - t, current, expiry)
    else:  # the current window became the previous one
        used = _weighted(current, max(0.0, 2 * expiry - t), 0, expiry)
    assert math.floor(used + 1e-9) + cost <= limit
