"""The machinery every population shares: the spec, the actor, client identities, call building, scheduling.

A population module only says *what* its accounts do (how many, when, which prompts, which parameters); making
profiles, choosing keys/IPs/user agents, building request bodies, merging overlapping sessions in time order and
everything after the call is planned (limits, retries, events) is common code, here and in the driver.
"""

from __future__ import annotations

import heapq
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from distillguard.simulate import accounts as acc
from distillguard.simulate.accounts import AccountProfile, Label
from distillguard.simulate.calls import CHAT, COMPLETIONS, Call
from distillguard.simulate.clock import DAY_US, HOUR_US, cumulative, is_weekend, times_in_day, utc_weights
from distillguard.simulate.driver import SDK_BACKOFF, RetryPolicy
from distillguard.simulate.models import ModelChooser, benign_adoption
from distillguard.simulate.network import datacenter_ip, residential_ip, user_agent
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World


@dataclass(frozen=True)
class PopulationSpec:
    """A documented population: its name, benign or attack, default weight within its side, and builder.

    ``build(world, n)`` returns the actors of ``n`` accounts (a campaign population may group them).
    """

    name: str
    label: Label
    weight: float
    summary: str
    build: Callable[[World, int], list[Actor]]


class IpPlan:
    """Where an account's calls come from.

    ``primary`` addresses are used in turn, each for ``period_us`` (a home line's dynamic address), or at random
    per call when ``period_us`` is None (a cloud service's egress set, a proxy pool). With probability
    ``secondary_share`` a call comes from ``secondary`` instead (the office NAT, a phone on mobile CGNAT, a VPN).
    """

    __slots__ = ("period_us", "primary", "secondary", "secondary_share")

    def __init__(
        self,
        primary: Sequence[str],
        period_us: int | None = None,
        secondary: Sequence[str] = (),
        secondary_share: float = 0.0,
    ) -> None:
        self.primary = tuple(primary)
        self.period_us = period_us
        self.secondary = tuple(secondary)
        self.secondary_share = secondary_share if secondary else 0.0

    def ip(self, rng: random.Random, ts_us: int) -> str:
        if self.secondary_share and rng.random() < self.secondary_share:
            return self.secondary[rng.randrange(len(self.secondary))]
        if self.period_us is None:
            return self.primary[rng.randrange(len(self.primary))]
        return self.primary[(ts_us // self.period_us) % len(self.primary)]


class Actor(ABC):
    """One account's behaviour: ``calls()`` yields its planned calls in time order."""

    policy: ClassVar[RetryPolicy] = SDK_BACKOFF

    def __init__(
        self,
        world: World,
        profile: AccountProfile,
        rng: random.Random,
        *,
        ips: IpPlan,
        user_agents: Sequence[str],
        models: ModelChooser | None = None,
    ) -> None:
        self.world = world
        self.profile = profile
        self.rng = rng
        self.ips = ips
        self.user_agents = tuple(user_agents)
        self.models = models or ModelChooser(benign_adoption(rng, mini_share=0.2), world.release_us)
        # Most traffic goes through the first key; the others are staging keys, a teammate's, an old one.
        self._key_cum = cumulative([4.0] + [1.0] * (len(profile.keys) - 1))

    @abstractmethod
    def calls(self) -> Iterator[Call]: ...

    # --- building calls --------------------------------------------------------------------------------
    def key(self) -> str:
        keys = self.profile.keys
        if len(keys) == 1:
            return keys[0]
        return self.rng.choices(keys, cum_weights=self._key_cum)[0]

    def user_agent(self) -> str:
        uas = self.user_agents
        # The main client almost always; a second tool (curl while debugging, a notebook) now and then.
        return uas[0] if len(uas) == 1 or self.rng.random() < 0.9 else uas[self.rng.randrange(1, len(uas))]

    def chat(
        self,
        ts_us: int,
        messages: list[dict[str, Any]],
        *,
        style: str = "chat",
        lang: str = "en",
        target_tokens: int = 300,
        labels: tuple[str, ...] = (),
        model: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        key: str | None = None,
        **params: Any,
    ) -> Call:
        """A chat completion call; ``params`` are the body's sampling parameters (None values are left out)."""
        body: dict[str, Any] = {"model": model or self.models.choose(self.rng, ts_us), "messages": messages}
        for name, value in params.items():
            if value is not None:
                body[name] = value
        return self._build_call(ts_us, body, CHAT, style, lang, target_tokens, labels, ip, user_agent, key)

    def completion(
        self,
        ts_us: int,
        prompt: str,
        *,
        style: str = "chat",
        target_tokens: int = 200,
        labels: tuple[str, ...] = (),
        model: str | None = None,
        **params: Any,
    ) -> Call:
        """A legacy ``/v1/completions`` call (eval harnesses and some scripts still use it)."""
        body: dict[str, Any] = {"model": model or self.models.choose(self.rng, ts_us), "prompt": prompt}
        for name, value in params.items():
            if value is not None:
                body[name] = value
        return self._build_call(ts_us, body, COMPLETIONS, style, "en", target_tokens, labels, None, None, None)

    def _build_call(
        self,
        ts_us: int,
        body: dict[str, Any],
        endpoint: str,
        style: str,
        lang: str,
        target_tokens: int,
        labels: tuple[str, ...],
        ip: str | None,
        user_agent: str | None,
        key: str | None,
    ) -> Call:
        rng = self.rng
        return Call(
            ts_us=ts_us,
            body=body,
            key_id=key or self.key(),
            ip=ip or self.ips.ip(rng, ts_us),
            user_agent=user_agent or self.user_agent(),
            style=style,
            lang=lang,
            target_tokens=max(1, target_tokens),
            labels=labels,
            endpoint=endpoint,
            seed=rng.getrandbits(62),
        )

    # --- time ------------------------------------------------------------------------------------------
    def daily_times(
        self, per_day: float, local_profile: Sequence[float], weekend_factor: float = 1.0
    ) -> Iterator[list[int]]:
        """For each day of the run, sorted arrival times: Poisson(``per_day`` x scale) spread by the profile."""
        world, rng, tz = self.world, self.rng, self.profile.tz_offset_h
        cum = cumulative(utc_weights(local_profile, tz))
        for day in world.days():
            factor = weekend_factor if is_local_weekend(day, tz) else 1.0
            yield times_in_day(rng, day, poisson(rng, per_day * factor * world.scale), cum)


def is_local_weekend(day_start_us: int, tz_offset_h: int) -> bool:
    # The local weekday around midday of this UTC day.
    return is_weekend(day_start_us + 12 * HOUR_US, tz_offset_h)


def schedule(sessions: Iterable[tuple[int, Iterator[Call]]]) -> Iterator[Call]:
    """Merge sessions that may overlap into one time-ordered stream, lazily.

    ``sessions`` yields ``(start, calls)`` sorted by start, where each session's calls are time-ordered and
    start no earlier than ``start``. Only sessions already started are held in memory.
    """
    heap: list[tuple[int, int, Call, Iterator[Call]]] = []
    order = 0
    source = iter(sessions)
    upcoming = next(source, None)
    while heap or upcoming is not None:
        while upcoming is not None and (not heap or upcoming[0] <= heap[0][0]):
            first = next(upcoming[1], None)
            if first is not None:
                heapq.heappush(heap, (first.ts_us, order, first, upcoming[1]))
                order += 1
            upcoming = next(source, None)
        if not heap:
            continue
        _, _, call, stream = heapq.heappop(heap)
        yield call
        following = next(stream, None)
        if following is not None:
            heapq.heappush(heap, (following.ts_us, order, following, stream))
            order += 1


# ---------------------------------------------------------------------------------------------- profiles
def new_profile(
    world: World,
    rng: random.Random,
    population: str,
    label: Label,
    *,
    tier: str,
    keys: int = 1,
    verified: bool = False,
    org: bool = False,
    paid: float = 0.6,
    email: str = "consumer",
    created_at_us: int | None = None,
    country: tuple[str, int] | None = None,
    campaign_id: str | None = None,
) -> AccountProfile:
    """A profile with the usual metadata distributions; callers override what their population does differently."""
    code, tz = country or acc.pick_country(rng)
    if label == "benign" and rng.random() < 0.03:
        email = "throwaway"  # relay and small custom domains: privacy-minded people look like throwaways
    if created_at_us is None:
        make = acc.benign_created_at if label == "benign" else acc.attacker_created_at
        created_at_us = make(rng, world.start_us, world.span_us)
    domain = {
        "consumer": acc.consumer_domain,
        "company": acc.company_domain,
        "university": acc.university_domain,
        "throwaway": acc.throwaway_domain,
    }[email](rng)
    return AccountProfile(
        account_id=world.unique_id("acct_"),
        population=population,
        label=label,
        created_at_us=created_at_us,
        tier=tier,
        country=code,
        tz_offset_h=tz,
        email_domain=domain,
        org_id=world.unique_id("org_", 10) if org else None,
        verified=verified,
        payment_fingerprint=acc.new_fingerprint(rng) if rng.random() < paid else None,
        keys=acc.new_key_ids(rng, keys),
        campaign_id=campaign_id,
        language=acc.LANGUAGE_OF.get(code, "en"),
    )


def home_ips(world: World, rng: random.Random, *, shared: float = 0.2) -> IpPlan:
    """A person's addresses: a home line re-addressed every few days, plus shared NATs/VPNs some of the time."""
    net = world.network
    homes = [residential_ip(rng) for _ in range(rng.randrange(1, 4))]
    secondary = rng.sample(net.shared_nats, 2) + ([rng.choice(net.vpn_exits)] if rng.random() < 0.15 else [])
    return IpPlan(homes, period_us=DAY_US * rng.randrange(2, 8), secondary=secondary, secondary_share=shared)


def cloud_ips(world: World, rng: random.Random, n: int, *, shared_egress: float = 0.3) -> IpPlan:
    """A service's egress: a few datacenter addresses of its own, or (for some) a platform's shared egress."""
    net = world.network
    if rng.random() < shared_egress:
        return IpPlan(rng.sample(net.cloud_egress, min(n, 4)))
    return IpPlan([datacenter_ip(rng) for _ in range(n)])


def one_per_account(name: str, factory: Callable[[World, random.Random], Actor]) -> Callable[[World, int], list[Actor]]:
    """The builder of a population whose accounts are independent: one actor per account, own random stream."""

    def build(world: World, n: int) -> list[Actor]:
        return [factory(world, world.rng(name, i)) for i in range(n)]

    return build


def agents(rng: random.Random, mix: str, n: int = 2) -> list[str]:
    return [user_agent(rng, mix) for _ in range(n)]


def lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, round(lognormal(rng, median, sigma))))
