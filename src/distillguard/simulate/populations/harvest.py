"""Single-account harvesting: a recipe (:mod:`.recipes`) run at some pacing.

solo_harvester
    One account, high volume, broad domains, single-turn, a few wrappers. Steady background load plus bursts
    of many parallel workers that overshoot the per-minute limit; it keeps hammering (immediate retries that
    ignore ``retry_after_ms``) and only pauses when a daily limit blocks it for a long time.
cot_harvester
    Chain-of-thought elicitation wrappers in several languages around broad, novel questions; long
    ``max_tokens``; streaming for some. Runs around the clock with a weak operator-hours rhythm.
logprob_harvester
    ``logprobs``/``top_logprobs`` (up to 20) with ``max_tokens`` 1-5 across broad content: harvesting the
    distribution rather than the text. Some on ``/v1/completions`` with integer ``logprobs`` and ``echo``.
slow_and_low
    Paced just under the binding limit (the free tier's daily cap), evenly around the clock with no rhythm,
    a couple of wrappers. Rarely refused; pauses when refused.
model_pivot
    Broad and chain-of-thought harvesting on the old model; probes the new model name before it exists (404s);
    within hours of the release moves nearly everything to the new model and multiplies its volume.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Iterator

from distillguard.simulate.calls import Call
from distillguard.simulate.clock import (
    DAY_US,
    MINUTE_US,
    OFFICE,
    blend,
    cumulative,
    times_in_day,
    utc_weights,
)
from distillguard.simulate.driver import HAMMER, PACED
from distillguard.simulate.models import NEW, Adoption, ModelChooser, pivot_adoption
from distillguard.simulate.network import datacenter_ip, residential_ip
from distillguard.simulate.populations.base import Actor, IpPlan, agents, new_profile, schedule
from distillguard.simulate.populations.recipes import Recipe, make_recipe
from distillguard.simulate.ratelimit import TIERS
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World


def attacker_ips(world: World, rng: random.Random) -> IpPlan:
    """A harvesting script's addresses: rented servers, a home line, or a VPN/proxy exit rotating now and then."""
    roll = rng.random()
    if roll < 0.45:
        return IpPlan([datacenter_ip(rng) for _ in range(rng.randrange(1, 4))])
    if roll < 0.75:
        return IpPlan([residential_ip(rng) for _ in range(rng.randrange(1, 3))], period_us=DAY_US * 3)
    return IpPlan(world.network.proxy_pool(rng, rng.randrange(5, 40), 0.7), period_us=rng.randrange(5, 120) * MINUTE_US)


class Harvester(Actor):
    """A single-account harvester; subclasses set the recipe, the account and the pacing."""

    population = "harvester"
    recipe_kind = "broad"

    def __init__(
        self,
        world: World,
        rng: random.Random,
        *,
        tier: str,
        models: ModelChooser | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        profile = new_profile(
            world,
            rng,
            self.population,
            "attack",
            tier=tier,
            keys=rng.randrange(1, 3),
            paid=0.8 if tier != "free" else 0.3,
            email="throwaway" if rng.random() < 0.4 else rng.choice(("consumer", "consumer", "company")),
        )
        super().__init__(
            world,
            profile,
            rng,
            ips=attacker_ips(world, rng),
            user_agents=agents(rng, "harvest", 2),
            models=models or ModelChooser(Adoption(rng.uniform(0, 0.3), None, 1.0, 0.0), world.release_us),
        )
        self.recipe = recipe or make_recipe(rng, self.recipe_kind)

    def calls(self) -> Iterator[Call]:
        if self.recipe.followup_share:
            # Follow-up turns can land after the next planned call: merge the two-call sessions in time order.
            return schedule((ts, self.recipe.session(self, ts)) for ts in self.times())
        return (self.recipe.call(self, ts) for ts in self.times())

    @abstractmethod
    def times(self) -> Iterator[int]: ...

    def steady(self, per_day: float, rhythm: float) -> Iterator[int]:
        """Around the clock, with an operator-hours swell of strength ``rhythm`` (0: flat)."""
        for times in self.daily_times(per_day, blend(OFFICE, rhythm), weekend_factor=self.rng.uniform(0.7, 1.0)):
            yield from times


class SoloHarvester(Harvester):
    population = "solo_harvester"
    policy = HAMMER

    def __init__(self, world: World, rng: random.Random) -> None:
        super().__init__(world, rng, tier="standard" if rng.random() < 0.5 else "free")
        limit = TIERS[self.profile.tier][0].amount
        self.background = lognormal(rng, 1500.0 if limit > 100 else 250.0, 0.5)
        self.bursts_per_day = rng.uniform(1.0, 2.5)
        # Offered load during a burst, in multiples of the per-minute limit.
        self.overshoot = rng.uniform(1.1, 1.6)
        self.limit = limit

    def times(self) -> Iterator[int]:
        rng, world = self.rng, self.world
        cum = cumulative(utc_weights(blend(OFFICE, 0.3), self.profile.tz_offset_h))
        for day in world.days():
            times = times_in_day(rng, day, poisson(rng, self.background * world.scale), cum)
            # events_scale changes how often it bursts, not how hard: a burst is defined by the limit it overshoots.
            for _ in range(poisson(rng, self.bursts_per_day * world.scale)):
                minutes = rng.uniform(0.5, 2.0) if self.limit > 100 else rng.uniform(10.0, 40.0)
                begin = day + int(rng.random() * (DAY_US - minutes * MINUTE_US))
                n = poisson(rng, self.limit * self.overshoot * minutes)
                times += [begin + int(rng.random() * minutes * MINUTE_US) for _ in range(n)]
            times.sort()
            yield from times


class SteadyHarvester(Harvester):
    """Around the clock at a per-account rate (lognormal around ``median_per_day``), a weak operator rhythm."""

    median_per_day = 1000.0
    max_rhythm = 0.5

    def __init__(self, world: World, rng: random.Random) -> None:
        super().__init__(world, rng, tier="standard")
        self.per_day = lognormal(rng, self.median_per_day, 0.5)
        self.rhythm = rng.uniform(0.0, self.max_rhythm)

    def times(self) -> Iterator[int]:
        return self.steady(self.per_day, self.rhythm)


class CotHarvester(SteadyHarvester):
    population = "cot_harvester"
    recipe_kind = "cot"
    median_per_day = 1000.0


class LogprobHarvester(SteadyHarvester):
    population = "logprob_harvester"
    recipe_kind = "logprob"
    median_per_day = 2500.0
    max_rhythm = 0.4


class SlowAndLow(Harvester):
    """Paced below the free tier's daily cap: evenly spaced calls, jittered so the spacing is not exact."""

    population = "slow_and_low"
    policy = PACED

    def __init__(self, world: World, rng: random.Random) -> None:
        super().__init__(
            world,
            rng,
            tier="free",
            recipe=Recipe(
                "broad", tuple(rng.sample(range(3), 2)), None, {"temperature": 0.7, "max_tokens": 1024}, target=500
            ),
        )
        daily_cap = TIERS["free"][1].amount
        self.per_day = min(daily_cap * 0.97, daily_cap * rng.uniform(0.82, 0.96) * world.scale)

    def times(self) -> Iterator[int]:
        rng, world = self.rng, self.world
        interval = DAY_US / self.per_day
        ts = float(max(world.start_us, self.profile.created_at_us)) + rng.random() * interval
        while ts < world.end_us:
            yield int(ts)
            ts += interval * rng.uniform(0.85, 1.15)


class ModelPivot(Harvester):
    population = "model_pivot"

    def __init__(self, world: World, rng: random.Random) -> None:
        models = ModelChooser(pivot_adoption(rng, mini_share=rng.uniform(0.0, 0.2)), world.release_us)
        super().__init__(
            world, rng, tier="standard", models=models, recipe=make_recipe(rng, rng.choice(("broad", "cot", "cot")))
        )
        self.per_day = lognormal(rng, 700.0, 0.5)
        self.boost = rng.uniform(2.0, 4.0)
        self.probes_per_day = rng.uniform(0.5, 4.0)

    def calls(self) -> Iterator[Call]:
        rng, world, models = self.rng, self.world, self.models
        probes = sorted(
            world.start_us + int(rng.random() * (world.release_us - world.start_us))
            for _ in range(poisson(rng, self.probes_per_day * (world.release_us - world.start_us) / DAY_US))
        )
        for ts in self.times():
            while probes and probes[0] <= ts:
                # Polling for the announced model: 404 model_not_found until the release.
                yield self.recipe.call(self, probes.pop(0), model=NEW)
            # Thinning: times come at the boosted rate; before the move only 1/boost of them are kept.
            if rng.random() * self.boost < 1.0 + models.new_share(ts) * (self.boost - 1.0):
                yield self.recipe.call(self, ts)

    def times(self) -> Iterator[int]:
        return self.steady(self.per_day * self.boost, 0.2)
