"""``hydra_campaign``: one harvesting operation spread over many small accounts.

Each campaign (several per run; tens to hundreds of members) has one recipe (wrappers, system prompt,
parameters), one rotating proxy pool, one script user agent, a few payment cards and a mail domain. Members:

- are created in bursts (waves of sign-ups minutes apart; later waves replace spent accounts mid-run);
- stay small: a budget of typically 15-90 calls each, under any per-account volume threshold;
- fire in sync: the campaign's scheduler sends pulses, and every participating member calls within seconds;
- sweep one source in disjoint slices: member i takes items [offset_i, offset_i + budget_i) of the source;
- mix in ordinary-looking cover traffic (casual single-turn questions at unsynchronised times);
- pivot together to a new model within hours of its release, for half of the campaigns.

Each member's label carries the campaign id.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from distillguard.simulate import accounts as acc
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import DAY_US, HOUR_US, MINUTE_US, US
from distillguard.simulate.driver import SDK_BACKOFF
from distillguard.simulate.models import Adoption, ModelChooser, pivot_adoption
from distillguard.simulate.network import user_agent
from distillguard.simulate.populations.base import Actor, IpPlan, lognormal_int, new_profile, schedule
from distillguard.simulate.populations.chat import casual_session
from distillguard.simulate.populations.recipes import Recipe, make_recipe
from distillguard.simulate.world import World

# (recipe kind, sweep source, weight)
_PLANS = (
    ("cot", "topics", 3.0), ("cot", "gsm8k-train", 2.0), ("broad", "topics", 2.5), ("logprob", "topics", 1.5),
    ("self_instruct", "seeds", 1.0), ("evol", "seeds", 1.0),
)  # fmt: skip
MEMBER_BUDGET_MEDIAN = 35


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    recipe: Recipe
    source: str
    proxies: tuple[str, ...]
    user_agents: tuple[str, ...]
    pulses: tuple[int, ...]
    waves: tuple[int, ...]
    cards: tuple[str, ...]
    domain: str | None
    countries: tuple[tuple[str, int], ...]
    adoption: Adoption
    cover_share: float


def _campaign(world: World, rng: random.Random) -> Campaign:
    kind, source, _ = rng.choices(_PLANS, weights=[p[2] for p in _PLANS])[0]
    # Pulses: every 10-90 minutes, with the operator's quiet hours skipped for some campaigns.
    period = rng.uniform(10, 90) * MINUTE_US
    quiet = rng.randrange(24) if rng.random() < 0.5 else None
    pulses = []
    ts = world.start_us + rng.random() * period
    while ts < world.end_us:
        hour = int(ts // HOUR_US) % 24
        if quiet is None or (hour - quiet) % 24 >= 6:
            pulses.append(int(ts))
        ts += period * rng.uniform(0.7, 1.3)
    first_wave = world.start_us - int(rng.uniform(0.2, 5.0) * DAY_US)
    later = [world.start_us + int(rng.random() * 0.7 * world.span_us) for _ in range(rng.randrange(0, 4))]
    script_ua = user_agent(rng, "harvest")
    return Campaign(
        campaign_id=world.unique_id("camp_", 8),
        recipe=make_recipe(rng, kind),
        source=source,
        proxies=world.network.proxy_pool(rng, rng.randrange(40, 600), rng.uniform(0.5, 0.95)),
        user_agents=(script_ua, script_ua, script_ua, user_agent(rng, "harvest")),
        pulses=tuple(pulses),
        waves=(first_wave, *sorted(later)),
        cards=tuple(acc.new_fingerprint(rng) for _ in range(rng.randrange(1, 6))),
        domain=acc.throwaway_domain(rng) if rng.random() < 0.6 else None,
        countries=tuple(acc.pick_country(rng) for _ in range(rng.randrange(1, 3))),
        adoption=pivot_adoption(rng) if rng.random() < 0.5 else Adoption(0.0, None, 1.0, 0.0),
        cover_share=rng.uniform(0.05, 0.3),
    )


class HydraMember(Actor):
    policy = SDK_BACKOFF

    def __init__(
        self, world: World, rng: random.Random, campaign: Campaign, wave: int, offset: int, budget: int
    ) -> None:
        created = campaign.waves[wave] + int(rng.random() * 90 * MINUTE_US)
        profile = new_profile(
            world,
            rng,
            "hydra_campaign",
            "attack",
            tier="free" if rng.random() < 0.85 else "standard",
            created_at_us=created,
            country=rng.choice(campaign.countries),
            campaign_id=campaign.campaign_id,
            email="consumer",
            paid=0.0,
        )
        if campaign.domain is not None and rng.random() < 0.85:
            profile.email_domain = campaign.domain
        if rng.random() < 0.7:
            profile.payment_fingerprint = rng.choice(campaign.cards)
        if rng.random() < 0.7:
            ips = IpPlan(campaign.proxies)  # a new exit per request
        else:
            ips = IpPlan(rng.sample(campaign.proxies, 3), period_us=HOUR_US)  # "sticky" proxy sessions
        super().__init__(
            world,
            profile,
            rng,
            ips=ips,
            user_agents=campaign.user_agents,
            models=ModelChooser(campaign.adoption, world.release_us),
        )
        self.campaign = campaign
        self.offset = offset
        self.budget = budget
        self.active_from = created + int(rng.uniform(0.2, 12.0) * HOUR_US)

    def calls(self) -> Iterator[Call]:
        rng, campaign, world = self.rng, self.campaign, self.world
        pulses = [p for p in campaign.pulses if p >= self.active_from]
        if not pulses:
            return iter(())
        cover = round(self.budget * campaign.cover_share)
        sweep = self.budget - cover
        per_pulse = rng.choice((1, 1, 2, 2, 3, 4))
        # Join just enough pulses to spend the sweep budget over the rest of the run (bounded by 1).
        participation = min(1.0, sweep / (per_pulse * len(pulses)) * rng.uniform(1.0, 2.0))
        planned: list[tuple[int, str | None]] = []
        for pulse in pulses:
            if len(planned) >= sweep:
                break
            if rng.random() < participation:
                ts = pulse + int(rng.random() * 20 * US)  # the scheduler's jitter: seconds
                for _ in range(min(per_pulse, sweep - len(planned))):
                    planned.append((ts, campaign.source))
                    ts += int(rng.uniform(0.5, 4.0) * US)
        end = planned[-1][0] if planned else world.end_us
        # Cover traffic: ordinary conversations (about two calls each) at unsynchronised times.
        covers = [
            (self.active_from + int(rng.random() * (end - self.active_from)), None) for _ in range((cover + 1) // 2)
        ]
        planned += covers
        planned.sort(key=lambda p: p[0])
        return schedule(self._sessions(planned))

    def _sessions(self, planned: list[tuple[int, str | None]]) -> Iterator[tuple[int, Iterator[Call]]]:
        rng, campaign, library = self.rng, self.campaign, self.world.library
        index = self.offset
        for ts, source in planned:
            if source is None:
                lang = self.profile.language if rng.random() < 0.5 else "en"
                yield ts, casual_session(self, ts, lang, stream=False, system=None)
            else:
                yield ts, iter((campaign.recipe.call(self, ts, library.sweep_item(source, index)),))
                index += 1


def campaign_sizes(rng: random.Random, n: int) -> list[int]:
    """Split ``n`` members into campaigns: about one per 15 members (1-8), uneven sizes, at least 5 each."""
    k = max(1, min(8, round(n / 15), n // 5))
    weights = [rng.lognormvariate(0.0, 0.6) for _ in range(k)]
    total = sum(weights)
    sizes = [max(5, int(n * w / total)) for w in weights] if n >= 5 * k else [n]
    while sum(sizes) > n:
        sizes[sizes.index(max(sizes))] -= 1
    sizes[0] += n - sum(sizes)
    return sizes


def build(world: World, n: int) -> list[Actor]:
    if n <= 0:
        return []
    rng = world.rng("hydra_campaign")
    members: list[Actor] = []
    for c, size in enumerate(campaign_sizes(rng, n)):
        crng = world.rng("hydra_campaign", c)
        campaign = _campaign(world, crng)
        offset = crng.randrange(0, 2000)
        for m in range(size):
            mrng = world.rng("hydra_campaign", c, m)
            budget = lognormal_int(mrng, MEMBER_BUDGET_MEDIAN * world.scale, 0.6, 3, 400)
            wave = 0 if m < size * 0.6 or len(campaign.waves) == 1 else mrng.randrange(1, len(campaign.waves))
            members.append(HydraMember(world, mrng, campaign, wave, offset, budget))
            offset += budget
    return members
