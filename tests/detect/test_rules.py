"""The transparent rules: what raises risk, what lowers it, and the reasons they give."""

from __future__ import annotations

import math

import pytest

from distillguard.detect.features import FEATURES
from distillguard.detect.rules import RULES, ramp, score_rules
from distillguard.detect.verdicts import verdict_for


def features(**overrides: float) -> dict[str, float]:
    base = dict.fromkeys(FEATURES, 0.0)
    base.update(
        log_events=math.log1p(50),
        account_age_days=200.0,
        events_per_age_day=0.25,
        hour_entropy=0.6,
        content_novelty=0.9,
        domain_count=2,
        domain_entropy=0.3,
        single_turn_share=0.5,
        out_in_ratio=2.0,
    )
    base.update(overrides)
    return base


def test_an_ordinary_user_is_allowed_with_no_reasons_to_worry() -> None:
    scored = score_rules(features())
    assert scored.risk < 0.05
    assert verdict_for(scored.risk) == "allow"


def test_cot_harvesting_is_flagged_with_its_reason() -> None:
    scored = score_rules(features(cot_share=0.8, log_events=math.log1p(3000), domain_entropy=0.8, domain_count=6))
    assert scored.risk > 0.5
    assert scored.reasons[0].signal == "cot_elicitation" and "80%" in scored.reasons[0].detail
    assert scored.reasons[0].weight > 0


def test_the_same_cot_on_benchmark_items_is_an_evaluation_run() -> None:
    evaluation = score_rules(features(cot_share=0.9, benchmark_share=0.9, log_events=math.log1p(3000)))
    assert evaluation.risk < 0.05
    assert any(r.signal == "benchmark_evaluation" and r.weight < 0 for r in evaluation.reasons)


def test_training_data_framing_alone_is_enough_to_flag() -> None:
    assert verdict_for(score_rules(features(training_data_share=0.6)).risk) in ("throttle", "degrade")


def test_a_fixed_purpose_business_app_is_not_a_template_sweep() -> None:
    app = features(
        log_events=math.log1p(50_000),
        top_template_share=0.95,
        content_novelty=0.9,
        domain_entropy=0.05,
        system_prompt_share=1.0,
        distinct_system_prompts=1,
        hour_entropy=0.99,
        busy_minute_share=0.9,
        logprob_harvest_share=0.8,
        verified=1.0,
    )
    sweep = features(
        log_events=math.log1p(50_000),
        top_template_share=0.95,
        content_novelty=0.95,
        domain_entropy=0.9,
        domain_count=7,
        hour_entropy=0.99,
        busy_minute_share=0.9,
    )
    assert score_rules(app).risk < 0.1
    assert score_rules(sweep).risk > 0.5


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (1, 0.0), (2, 0.5), (3, 1.0), (9, 1.0)])
def test_ramp(value: float, expected: float) -> None:
    assert ramp(value, 1, 3) == expected


def test_every_rule_explains_itself_on_any_features() -> None:
    f = features(cot_share=0.5, verified=1.0)
    for rule in RULES:
        assert rule.explain(f)
        assert 0.0 <= rule.activation(f) <= 1.0


def test_verdict_thresholds_are_ordered() -> None:
    assert [verdict_for(r) for r in (0.0, 0.31, 0.51, 0.71, 0.86, 0.96)] == [
        "allow",
        "watch",
        "throttle",
        "degrade",
        "challenge",
        "block",
    ]


def test_two_curious_questions_are_not_a_campaign() -> None:
    early = score_rules(features(cot_share=1.0, log_events=math.log1p(2)))
    later = score_rules(features(cot_share=1.0, log_events=math.log1p(40)))
    assert verdict_for(early.risk) == "allow"
    assert verdict_for(later.risk) != "allow"
