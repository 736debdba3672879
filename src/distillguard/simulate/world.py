"""The shared context of one run: the time span, the model release, content, network pools, id allocation."""

from __future__ import annotations

import random
from collections.abc import Iterator

from distillguard.simulate.clock import DAY_US, day_starts
from distillguard.simulate.config import SimulationConfig
from distillguard.simulate.library import ContentLibrary
from distillguard.simulate.models import RELEASE_AT
from distillguard.simulate.network import Network
from distillguard.simulate.rng import derive_rng, hex_id
from distillguard.timefmt import epoch_us


class World:
    def __init__(self, config: SimulationConfig, library: ContentLibrary | None = None) -> None:
        self.config = config
        self.seed = config.seed
        self.scale = config.events_scale
        self.start_us = epoch_us(config.start)
        self.span_us = int(config.days * DAY_US)
        self.end_us = self.start_us + self.span_us
        self.release_us = self.start_us + int(RELEASE_AT * self.span_us)
        self.library = library if library is not None else ContentLibrary(config.corpus)
        self.network = Network(config.seed)
        self._ids: set[str] = set()
        self._id_rng = derive_rng(config.seed, "ids")

    def rng(self, *parts: object) -> random.Random:
        """An independent random stream for a named part of the run."""
        return derive_rng(self.seed, *parts)

    def days(self) -> Iterator[int]:
        return day_starts(self.start_us, self.end_us)

    def unique_id(self, prefix: str, digits: int = 12) -> str:
        """A fresh id (accounts, orgs, campaigns): drawn from one stream, checked against all previous ones."""
        while True:
            candidate = prefix + hex_id(self._id_rng, digits)
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate
