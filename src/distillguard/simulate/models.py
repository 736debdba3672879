"""The model catalogue and the release of a new model during the run.

``frontier-2`` is released at ``RELEASE_AT`` (60%) of the simulated span. Before that only ``frontier-1`` and
``frontier-mini`` exist. Who moves, and how fast, is the signal: model-pivot attackers (and some hydra campaigns)
move nearly all traffic within hours; benign users adopt gradually over days and keep part of their traffic on
the old model; business apps are pinned. Evaluation teams are the benign exception that also moves within
hours (they benchmark the new model on release day), which keeps "fast adoption" from being a clean feature.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from distillguard.simulate.clock import HOUR_US

OLD = "frontier-1"
MINI = "frontier-mini"
NEW = "frontier-2"
MODELS = (OLD, MINI, NEW)
RELEASE_AT = 0.6

# Decode speed (tokens/s) and time to first token (ms) per model: latency follows from them.
SPEED = {OLD: 70.0, MINI: 160.0, NEW: 55.0}
TTFT_MS = {OLD: 380.0, MINI: 180.0, NEW: 520.0}


@dataclass(frozen=True, slots=True)
class Adoption:
    """How one account picks its model over time.

    ``mini_share``: share of calls on the small model; ``adopt_after_h``: hours after release when the account
    starts using the new model (None: never); ``ramp_h``: hours to reach ``new_share`` of its traffic.
    """

    mini_share: float
    adopt_after_h: float | None
    ramp_h: float
    new_share: float


def benign_adoption(rng: random.Random, *, mini_share: float, never: float = 0.35) -> Adoption:
    if rng.random() < never:
        return Adoption(mini_share, None, 1.0, 0.0)
    return Adoption(mini_share, rng.expovariate(1 / 40.0) + 2.0, rng.uniform(24.0, 96.0), rng.uniform(0.3, 0.9))


def pivot_adoption(rng: random.Random, *, mini_share: float = 0.0) -> Adoption:
    """Attackers chasing the newest model: within 0.5-8 hours, nearly everything."""
    return Adoption(mini_share, rng.uniform(0.5, 8.0), rng.uniform(0.5, 3.0), rng.uniform(0.92, 1.0))


class ModelChooser:
    __slots__ = ("_adoption", "_full_us", "_release_us", "_start_us")

    def __init__(self, adoption: Adoption, release_us: int) -> None:
        self._adoption = adoption
        self._release_us = release_us
        if adoption.adopt_after_h is None:
            self._start_us = self._full_us = 1 << 62
        else:
            self._start_us = release_us + int(adoption.adopt_after_h * HOUR_US)
            self._full_us = self._start_us + int(adoption.ramp_h * HOUR_US)

    @property
    def adoption(self) -> Adoption:
        return self._adoption

    def new_share(self, ts_us: int) -> float:
        if ts_us < self._start_us:
            return 0.0
        if ts_us >= self._full_us:
            return self._adoption.new_share
        return self._adoption.new_share * (ts_us - self._start_us) / (self._full_us - self._start_us)

    def choose(self, rng: random.Random, ts_us: int) -> str:
        roll = rng.random()
        share = self.new_share(ts_us)
        if roll < share:
            return NEW
        return MINI if rng.random() < self._adoption.mini_share else OLD
