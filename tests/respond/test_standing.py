"""Standings: escalate at once, hold for review above the automatic cap, relax with hysteresis, lapse when stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from distillguard.config import Level, RespondConfig
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS
from distillguard.respond.policy import ALLOW, Policy
from distillguard.respond.standing import Standing, Transitions
from distillguard.store.models import Account

S = 1_000_000
THRESHOLDS = dict(DEFAULT_THRESHOLDS)


def machine(**config: object) -> Transitions:
    return Transitions(RespondConfig.model_validate(config), THRESHOLDS)


def test_escalation_is_immediate_and_capped_for_review() -> None:
    t = machine()
    st = Standing("acc")
    change = t.on_verdict(st, "throttle", 0.55, ["cot_elicitation"], 10 * S)
    assert change is not None and change.kind == "escalated" and (change.before, change.after) == ("allow", "throttle")
    assert not change.needs_case  # below review.open_case_at (degrade)
    # A block verdict is applied only up to the automatic cap (degrade) and waits for a reviewer.
    change = t.on_verdict(st, "block", 0.97, ["cot_elicitation", "template_sweep"], 11 * S)
    assert change is not None and change.after == "degrade" and change.pending == "block" and change.needs_case
    assert st.level == "degrade" and st.pending == "block"
    # The same proposal again is no new change.
    assert t.on_verdict(st, "block", 0.98, ["cot_elicitation"], 12 * S) is None


def test_a_risk_hovering_at_a_threshold_does_not_flap() -> None:
    t = machine(min_hold_s=0)
    st = Standing("acc")
    t.on_verdict(st, "throttle", 0.51, [], 0)
    levels = []
    for i, risk in enumerate([0.49, 0.52, 0.48, 0.51, 0.45, 0.5]):
        verdict: Level = "throttle" if risk >= 0.5 else "watch"
        t.on_verdict(st, verdict, risk, [], (i + 1) * S)
        levels.append(st.level)
    assert levels == ["throttle"] * 6  # within the 0.1 hysteresis band: held
    change = t.on_verdict(st, "watch", 0.35, [], 20 * S)
    assert change is not None and change.kind == "relaxed" and st.level == "watch"


def test_relaxing_waits_for_the_minimum_hold() -> None:
    t = machine(min_hold_s=600)
    st = Standing("acc")
    t.on_verdict(st, "degrade", 0.75, [], 0)
    # One comparison of a pair: `and st.level == "degrade"` would leave mypy sure of that level past the next call.
    assert (t.on_verdict(st, "allow", 0.05, [], 599 * S), st.level) == (None, "degrade")
    assert t.on_verdict(st, "allow", 0.05, [], 600 * S) is not None and st.level == "allow"


def test_unsupported_levels_expire_to_the_latest_verdict() -> None:
    t = machine(expire_after_s=3600)
    st = Standing("acc")
    t.on_verdict(st, "throttle", 0.6, [], 0)
    assert t.expire(st, 3599 * S) is None
    change = t.expire(st, 3600 * S)
    assert change is not None and change.kind == "expired" and st.level == "allow"


def test_confirmed_and_exempt_standings_are_left_alone() -> None:
    t = machine()
    confirmed = Standing("a", level="block", confirmed=True)
    assert t.on_verdict(confirmed, "allow", 0.0, [], 10**9 * S) is None and confirmed.level == "block"
    assert t.expire(confirmed, 10**9 * S) is None
    exempt = Standing("b", exempt_until_us=100 * S)
    assert t.on_verdict(exempt, "block", 0.99, [], 50 * S) is None and exempt.level == "allow"
    assert t.on_verdict(exempt, "block", 0.99, [], 101 * S) is not None


def account(**fields: object) -> Account:
    return Account("acc", created_at=datetime(2026, 1, 1, tzinfo=UTC), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "fields", "level", "applied", "why"),
    [
        ({}, {}, "block", True, "enforce"),
        ({"mode": "shadow"}, {}, "block", False, "shadow"),
        ({"allowlist": {"orgs": ["evals-inc"]}}, {"org_id": "evals-inc"}, "block", False, "allowlisted"),
        ({"allowlist": {"accounts": ["acc"]}}, {}, "degrade", False, "allowlisted"),
        ({}, {"verified": True}, "challenge", True, "verified: challenge met"),
    ],
)
def test_policy_decisions(
    config: dict[str, object], fields: dict[str, object], level: str, applied: bool, why: str
) -> None:
    policy = Policy(RespondConfig.model_validate(config))
    decision = policy.decide(Standing("acc", level=level, case_id="case_1"), account(**fields))  # type: ignore[arg-type]
    assert decision.applied is applied and decision.why == why and decision.case_id == "case_1"
    if why.startswith("verified"):
        assert decision.level == "degrade" and decision.actions == {"throttle", "degrade"}
    assert decision.has("block") is (level == "block" and applied)
    assert policy.decide(None, account()) is ALLOW


def test_actions_per_level_are_configurable() -> None:
    policy = Policy(RespondConfig.model_validate({"actions": {"throttle": ["throttle", "tarpit"]}}))
    decision = policy.decide(Standing("acc", level="throttle"), account())
    assert decision.actions == {"throttle", "tarpit"}
    with pytest.raises(ValueError, match="unknown levels"):
        RespondConfig.model_validate({"actions": {"nuke": ["block"]}})
