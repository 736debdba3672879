"""From risk to verdict: ordered thresholds, configurable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeAlias

Verdict = Literal["allow", "watch", "throttle", "degrade", "challenge", "block"]
VERDICTS: tuple[Verdict, ...] = ("allow", "watch", "throttle", "degrade", "challenge", "block")
# The lowest risk at which each verdict applies.
DEFAULT_THRESHOLDS: Mapping[Verdict, float] = {
    "watch": 0.3,
    "throttle": 0.5,
    "degrade": 0.7,
    "challenge": 0.85,
    "block": 0.95,
}
# Thresholds as code that only looks them up takes them: keyed by verdict, as detection keeps them (above), or by name,
# as configured ([detect] thresholds, whose keys the configuration checks are verdicts).
Thresholds: TypeAlias = Mapping[Verdict, float] | Mapping[str, float]
FLAGGED: frozenset[Verdict] = frozenset({"throttle", "degrade", "challenge", "block"})


def verdict_for(risk: float, thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS) -> Verdict:
    chosen: Verdict = "allow"
    for verdict in VERDICTS[1:]:
        if risk >= thresholds.get(verdict, 2.0):
            chosen = verdict
    return chosen
