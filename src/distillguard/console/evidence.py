"""The calls behind a reason: for each detection reason that rests on per-call signals, which of the account's
latest calls carry that signal, so a reviewer can open them and judge for themselves.

The signals are the ones the gateway stored with each event (``sig_*`` columns, events/signals.py); reasons that
describe timing or volume (round-the-clock activity, volume for the account's age) have no single call to show.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distillguard.detect.features import LONG_MAX_TOKENS

Row = Mapping[str, Any]
Test = Callable[[Row], bool]
EXAMPLES = 5


def _set(column: str) -> Test:
    return lambda row: bool(row.get(column))


def _top_template(rows: Sequence[Row]) -> Test:
    counts = Counter(r.get("sig_template_id") for r in rows if r.get("sig_template_id"))
    if not counts:
        return lambda row: False
    top = counts.most_common(1)[0][0]
    return lambda row: row.get("sig_template_id") == top


# reason signal -> (what the matching calls do, the test over a stored signal row, given all rows)
SIGNS: dict[str, tuple[str, Callable[[Sequence[Row]], Test]]] = {
    "cot_elicitation": ("ask for step-by-step reasoning", lambda rows: _set("sig_cot")),
    "training_data_framing": ("ask for generated training data", lambda rows: _set("sig_training_data")),
    "rubric_grading": ("use the model as a grader", lambda rows: _set("sig_rubric")),
    "logprob_harvesting": ("request log-probabilities", lambda rows: _set("sig_logprob_harvest")),
    "template_sweep": ("fill the account's most common prompt template", _top_template),
    "broad_single_turn_sweep": ("are single-turn requests", lambda rows: lambda r: (r.get("sig_user_turns") or 0) <= 1),
    "rate_limit_pressure": ("were refused by a rate limit", lambda rows: lambda r: r.get("status") == 429),
    "long_completions": (
        f"ask for {LONG_MAX_TOKENS:,} or more output tokens",
        lambda rows: lambda r: (r.get("sig_max_tokens") or 0) >= LONG_MAX_TOKENS,
    ),
    "benchmark_evaluation": ("are items of public benchmarks", lambda rows: _set("sig_benchmark")),
    "fixed_purpose_app": ("carry a system prompt", lambda rows: _set("sig_system_prompt_hash")),
}


@dataclass
class ReasonEvidence:
    signal: str
    value: float | None
    detail: str
    weight: float | None
    # What a matching call does, how many of the calls read match, of how many, and the newest matching ones.
    meaning: str | None = None
    matched: int = 0
    of: int = 0
    examples: list[Row] = field(default_factory=list)


def explain(reasons: Sequence[Mapping[str, Any]], rows: Sequence[Row]) -> list[ReasonEvidence]:
    """Each reason (``Reason.to_json()``) with the calls among ``rows`` (newest first) that bear it out."""
    out = []
    for reason in reasons:
        signal = str(reason.get("signal", ""))
        item = ReasonEvidence(
            signal,
            reason.get("value"),
            str(reason.get("detail", "")),
            reason.get("weight"),
        )
        sign = SIGNS.get(signal)
        if sign is not None and rows:
            meaning, make = sign
            test = make(rows)
            hits = [r for r in rows if test(r)]
            item.meaning, item.matched, item.of, item.examples = meaning, len(hits), len(rows), hits[:EXAMPLES]
        out.append(item)
    return out
