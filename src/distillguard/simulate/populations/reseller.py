"""``reseller_mixed``: an API reseller whose account carries real customers' traffic and harvesting.

Resellers aggregate end users behind one account (one backend: a few datacenter addresses, one SDK user
agent, several keys). Their real customers chat and ask code questions with a customer-facing daily rhythm;
mixed into that stream, 30-60% of the calls are harvesting (one recipe, single-turn, broad). Per-account
aggregates therefore look half benign: the harvesting is only visible in the mix of content and shapes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

from distillguard.simulate.calls import Call
from distillguard.simulate.clock import CUSTOMER, blend, cumulative, times_in_day, utc_weights
from distillguard.simulate.driver import SDK_BACKOFF
from distillguard.simulate.models import ModelChooser, benign_adoption
from distillguard.simulate.populations.base import Actor, agents, cloud_ips, new_profile, schedule
from distillguard.simulate.populations.chat import casual_session
from distillguard.simulate.populations.developer import developer_session
from distillguard.simulate.populations.recipes import make_recipe
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World

# Mean calls per customer session (casual ~2.3 turns, developer ~5.5 calls, 70/30 mix): sets the harvest rate.
_CALLS_PER_SESSION = 3.3


class ResellerMixed(Actor):
    policy = SDK_BACKOFF

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "reseller_mixed",
            "attack",
            tier="enterprise" if rng.random() < 0.4 else "standard",
            keys=rng.randrange(3, 12),
            org=True,
            verified=rng.random() < 0.4,
            paid=1.0,
            email="company",
        )
        super().__init__(
            world,
            profile,
            rng,
            ips=cloud_ips(world, rng, rng.randrange(2, 6), shared_egress=0.1),
            user_agents=agents(rng, "app", 2),
            models=ModelChooser(benign_adoption(rng, mini_share=0.3, never=0.0), world.release_us),
        )
        self.sessions_per_day = lognormal(rng, 60.0, 0.5)
        self.harvest_share = rng.uniform(0.3, 0.6)
        self.recipe = make_recipe(rng, rng.choice(("broad", "broad", "cot")))
        self.rhythm = cumulative(utc_weights(blend(CUSTOMER, rng.uniform(0.4, 0.9)), profile.tz_offset_h))
        self.languages = ("en", "en", "en", profile.language, "zh", "ru", "es")

    def calls(self) -> Iterator[Call]:
        return heapq.merge(schedule(self._customers()), self._harvest(), key=lambda c: c.ts_us)

    def _customers(self) -> Iterator[tuple[int, Iterator[Call]]]:
        rng, world = self.rng, self.world
        for day in world.days():
            for start in times_in_day(rng, day, poisson(rng, self.sessions_per_day * world.scale), self.rhythm):
                if rng.random() < 0.7:
                    lang = rng.choice(self.languages)
                    yield start, casual_session(self, start, lang, stream=rng.random() < 0.5, system=None)
                else:
                    yield start, developer_session(self, start)

    def _harvest(self) -> Iterator[Call]:
        rng, world = self.rng, self.world
        per_day = self.sessions_per_day * _CALLS_PER_SESSION * self.harvest_share / (1 - self.harvest_share)
        # Harvest jobs run when the reseller's own traffic is low, but not only then (a weak, inverted rhythm).
        flat = cumulative([1.0] * 24)
        for day in world.days():
            for ts in times_in_day(rng, day, poisson(rng, per_day * world.scale), flat):
                yield self.recipe.call(self, ts)
