"""The transparent baseline: weighted rules over account features, each with the reason it gives a reviewer.

A rule's activation ramps from 0 to 1 between two values of its feature(s); the risk is the logistic of the bias
plus the weighted activations. Positive rules describe extraction, negative ones describe legitimate heavy use
(evaluation runs, verified organisations, fixed-purpose business apps). The reasons are the rules that moved the
risk most, with the feature values behind them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from distillguard.detect.reasons import Reason

Features = Mapping[str, float]


def ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    if value <= low:
        return 0.0
    if value >= high:
        return 1.0
    return (value - low) / (high - low)


@dataclass(frozen=True)
class Rule:
    signal: str
    weight: float
    activation: Callable[[Features], float]
    # Formats the detail from the features: what the value means, in words a reviewer can check.
    explain: Callable[[Features], str]
    value: Callable[[Features], float]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _support(f: Features) -> float:
    """Shares need evidence: no weight on fewer than 4 requests, full weight from 25 on. Two curious questions that
    ask for step-by-step reasoning are not a campaign."""
    return ramp(f["log_events"], math.log1p(3), math.log1p(25))


def _volume(f: Features) -> float:
    return ramp(f["log_events"], math.log(150), math.log(3000))


RULES: tuple[Rule, ...] = (
    Rule(
        "cot_elicitation",
        4.5,
        lambda f: ramp(max(0.0, f["cot_share"] - f["benchmark_share"]), 0.15, 0.5) * _support(f),
        lambda f: (
            f"{_pct(f['cot_share'])} of requests ask for step-by-step reasoning traces, on content that is not "
            "a known benchmark"
        ),
        lambda f: f["cot_share"],
    ),
    Rule(
        "training_data_framing",
        4.5,
        lambda f: ramp(f["training_data_share"], 0.05, 0.3) * _support(f),
        lambda f: (
            f"{_pct(f['training_data_share'])} of requests ask for generated training examples or tasks "
            "(self-instruct / instruction-response framing)"
        ),
        lambda f: f["training_data_share"],
    ),
    Rule(
        "rubric_grading",
        3.5,
        lambda f: ramp(f["rubric_share"], 0.1, 0.5) * _support(f),
        lambda f: f"{_pct(f['rubric_share'])} of requests use the model as a grader or reward model",
        lambda f: f["rubric_share"],
    ),
    Rule(
        "logprob_harvesting",
        3.0,
        lambda f: ramp(f["logprob_harvest_share"], 0.2, 0.6) * ramp(f["domain_entropy"], 0.3, 0.7) * _support(f),
        lambda f: (
            f"{_pct(f['logprob_harvest_share'])} of requests fetch log-probabilities with tiny completions, "
            f"across {f['domain_count']:.0f} capability domains"
        ),
        lambda f: f["logprob_harvest_share"],
    ),
    Rule(
        "template_sweep",
        3.0,
        lambda f: (
            ramp(f["top_template_share"], 0.15, 0.5)
            * ramp(f["content_novelty"], 0.5, 0.9)
            * ramp(f["domain_entropy"], 0.35, 0.75)
            * _volume(f)
        ),
        lambda f: (
            f"one prompt template carries {_pct(f['top_template_share'])} of requests while "
            f"{_pct(f['content_novelty'])} of contents are new, across {f['domain_count']:.0f} domains: a dataset sweep"
        ),
        lambda f: f["top_template_share"],
    ),
    Rule(
        "volume_for_age",
        1.5,
        lambda f: ramp(f["events_per_age_day"], 200, 2000) if f["account_age_days"] >= 0 else 0.0,
        lambda f: (
            f"{f['events_per_age_day']:.0f} requests per day of account age ({f['account_age_days']:.1f} days old)"
        ),
        lambda f: f["events_per_age_day"],
    ),
    Rule(
        "round_the_clock",
        1.0,
        lambda f: ramp(f["hour_entropy"], 0.92, 0.99) * _volume(f),
        lambda f: f"activity spread evenly over the day (hour entropy {f['hour_entropy']:.2f}), no diurnal rhythm",
        lambda f: f["hour_entropy"],
    ),
    Rule(
        "scripted_pace",
        1.0,
        lambda f: ramp(f["busy_minute_share"], 0.3, 0.8) * _volume(f),
        lambda f: f"{_pct(f['busy_minute_share'])} of active minutes carry 10 or more calls",
        lambda f: f["busy_minute_share"],
    ),
    Rule(
        "metronomic_pacing",
        2.5,
        lambda f: (1.0 - ramp(f["gap_cv"], 0.15, 0.5)) * _volume(f) * ramp(f["domain_entropy"], 0.3, 0.6),
        lambda f: (
            f"calls arrive at near-constant intervals (gap variation {f['gap_cv']:.2f}; people and apps "
            "are near 1) over broad content: a scheduler pacing a sweep"
        ),
        lambda f: f["gap_cv"],
    ),
    Rule(
        "broad_single_turn_sweep",
        1.5,
        lambda f: (
            ramp(f["single_turn_share"], 0.9, 0.99)
            * ramp(f["content_novelty"], 0.85, 0.97)
            * ramp(f["domain_entropy"], 0.45, 0.75)
            * _volume(f)
        ),
        lambda f: (
            f"{_pct(f['single_turn_share'])} single-turn requests, {_pct(f['content_novelty'])} new contents "
            f"across {f['domain_count']:.0f} domains: coverage, not conversation"
        ),
        lambda f: f["single_turn_share"],
    ),
    Rule(
        "rate_limit_pressure",
        1.2,
        lambda f: ramp(f["rate_limited_share"], 0.05, 0.3),
        lambda f: f"{_pct(f['rate_limited_share'])} of calls were refused by rate limits and the client kept going",
        lambda f: f["rate_limited_share"],
    ),
    Rule(
        "new_model_pivot",
        2.0,
        lambda f: ramp(f["new_model_pivot"], 0.5, 0.9),
        lambda f: f"moved {_pct(f['new_model_pivot'])} of its traffic to a newly released model within 24 hours",
        lambda f: f["new_model_pivot"],
    ),
    Rule(
        "long_completions",
        0.8,
        lambda f: ramp(f["long_max_tokens_share"], 0.3, 0.8) * ramp(f["domain_entropy"], 0.3, 0.7),
        lambda f: f"{_pct(f['long_max_tokens_share'])} of requests ask for 4,096 or more output tokens",
        lambda f: f["long_max_tokens_share"],
    ),
    Rule(
        "benchmark_evaluation",
        -3.5,
        lambda f: ramp(f["benchmark_share"], 0.3, 0.8),
        lambda f: (
            f"{_pct(f['benchmark_share'])} of requests are items of public benchmark test sets: an evaluation run"
        ),
        lambda f: f["benchmark_share"],
    ),
    Rule(
        "verified_organisation",
        -1.5,
        lambda f: f["verified"],
        lambda f: "the account belongs to a verified organisation",
        lambda f: f["verified"],
    ),
    Rule(
        "fixed_purpose_app",
        -1.5,
        lambda f: (
            ramp(f["system_prompt_share"], 0.8, 0.98)
            * (1.0 if f["distinct_system_prompts"] <= 2 else 0.0)
            * (1.0 - ramp(f["domain_entropy"], 0.2, 0.5))
        ),
        lambda f: (
            f"one fixed system prompt on {_pct(f['system_prompt_share'])} of requests, narrow content: "
            "a fixed-purpose application"
        ),
        lambda f: f["system_prompt_share"],
    ),
)
BIAS = -4.0


@dataclass(frozen=True)
class RuleScore:
    risk: float
    reasons: list[Reason]


def score_rules(features: Features, top: int = 4) -> RuleScore:
    """Risk in [0, 1] from the rules, with the reasons that moved it most (either way)."""
    logit = BIAS
    moved: list[tuple[float, Rule]] = []
    for rule in RULES:
        contribution = rule.weight * rule.activation(features)
        if contribution:
            logit += contribution
            moved.append((contribution, rule))
    moved.sort(key=lambda item: -abs(item[0]))
    reasons = [
        Reason(rule.signal, round(rule.value(features), 4), rule.explain(features), round(contribution, 3))
        for contribution, rule in moved[:top]
    ]
    return RuleScore(1.0 / (1.0 + math.exp(-logit)), reasons)
