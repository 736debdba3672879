"""The console benchmark's world: accounts from the simulator's populations, what each population sends (request
pools with what the event log keeps of each call), the planted campaigns, and when everyone calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from distillguard.detect.signals import extract
from distillguard.detect.verdicts import Verdict
from distillguard.events.retention import retained_text
from distillguard.events.schema import SCHEMA_VERSION
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, as_row
from distillguard.simulate.accounts import AccountProfile
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import CUSTOMER, EVENING, FLAT, HOUR_US, OFFICE, utc_weights
from distillguard.simulate.config import SimulationConfig
from distillguard.simulate.encode import prompt_tokens
from distillguard.simulate.engine import allocate
from distillguard.simulate.models import NEW, SPEED, TTFT_MS
from distillguard.simulate.populations import POPULATIONS, Actor, hydra
from distillguard.simulate.responses import synthesize
from distillguard.simulate.rng import derive_rng
from distillguard.simulate.world import World

Ints = npt.NDArray[np.int64]

UPSTREAM = "vllm"

# Which columns the generator fills per event, and in which order (the rest stay NULL: client_tls, extra).
EVENT_HEAD = (
    "event_id", "ts_us", "account_id", "key_id", "org_id", "client_ip", "user_agent", "client_fingerprint",
    "status", "latency_ms", "ttft_ms", "error_code",
)  # fmt: skip
ENTRY = (
    "endpoint", "model", "upstream", "stream", "request", "prompt_tokens", "completion_tokens", "finish_reason",
    "text", "text_sha256", "schema_version", "signals_version", *(f"sig_{n}" for n in SIGNAL_COLUMNS),
)  # fmt: skip


@dataclass(frozen=True)
class Scale:
    accounts: int = 100_000
    events: int = 10_000_000
    days: float = 7.0
    seed: int = 1
    # The heaviest account's calls: the account-detail page's worst case.
    heavy_events: int = 150_000
    # Events keep the first this many characters of each answer (events.text_mode = "truncated").
    text_chars: int = 100
    # The share of requests stored as the simulator wrote them; the rest are compacted (``compact``), which keeps
    # ten million events to a few GB.
    full_share: float = 0.1
    # Single-account attackers among the simulated accounts (hydra members come on top).
    attack_share: float = 0.012

    @property
    def small_campaigns(self) -> int:
        return max(2, round(self.accounts / 540))

    @property
    def large_campaign_members(self) -> int:
        """Members of the run that plants eight large campaigns (the largest is the campaign-detail worst case)."""
        return max(10, round(self.accounts * 0.0135))

    @property
    def benign_clusters(self) -> int:
        return max(1, round(self.accounts / 8000))


# --------------------------------------------------------------------------------------------------- accounts
@dataclass(frozen=True)
class Volume:
    """How much an account of a population calls: log-normal calls per week, and when (local-time profile)."""

    median: float
    sigma: float
    profile: Sequence[float]
    day_share: tuple[float, float]  # the share of days it is active on, drawn per account
    weekend: float  # activity on local weekend days relative to weekdays
    refused: tuple[float, float]  # base share of calls refused by rate limits, drawn per account


VOLUMES: dict[str, Volume] = {
    "casual_chat": Volume(18, 1.1, EVENING, (0.15, 0.7), 1.2, (0.0, 0.002)),
    "developer": Volume(90, 1.3, OFFICE, (0.4, 0.9), 0.3, (0.0, 0.01)),
    "researcher": Volume(70, 1.2, OFFICE, (0.3, 0.9), 0.5, (0.0, 0.01)),
    "business_app": Volume(900, 1.5, CUSTOMER, (1.0, 1.0), 0.9, (0.0, 0.02)),
    "eval_run": Volume(700, 1.0, OFFICE, (0.15, 0.5), 0.4, (0.01, 0.08)),
    "solo_harvester": Volume(2500, 0.8, FLAT, (0.6, 1.0), 1.0, (0.05, 0.3)),
    "cot_harvester": Volume(1200, 0.8, FLAT, (0.5, 1.0), 1.0, (0.02, 0.15)),
    "logprob_harvester": Volume(2000, 0.8, FLAT, (0.5, 1.0), 1.0, (0.02, 0.2)),
    "slow_and_low": Volume(900, 0.25, FLAT, (1.0, 1.0), 1.0, (0.0, 0.01)),
    "model_pivot": Volume(1000, 0.7, FLAT, (0.5, 1.0), 1.0, (0.02, 0.1)),
    "self_instruct": Volume(1200, 0.8, FLAT, (0.5, 1.0), 1.0, (0.02, 0.1)),
    "evol_paraphraser": Volume(1200, 0.8, FLAT, (0.5, 1.0), 1.0, (0.02, 0.1)),
    "rubric_grader": Volume(1200, 0.8, FLAT, (0.5, 1.0), 1.0, (0.02, 0.1)),
    "reseller_mixed": Volume(3000, 0.8, CUSTOMER, (1.0, 1.0), 1.0, (0.02, 0.15)),
}
HYDRA = "hydra_campaign"


@dataclass(slots=True)
class Acct:
    index: int
    profile: AccountProfile
    ips: tuple[str, ...]
    agents: tuple[str, ...]
    pool: int
    campaign: int = -1
    events: int = 0
    refused: float = 0.0


@dataclass(slots=True)
class Plan:
    """A campaign as the clustering job found it: members (account indices), and for hydra ones the operation."""

    members: list[int]
    operation: hydra.Campaign | None
    cluster_id: str = ""
    found_us: int = 0
    risk: float = 0.0
    verdict: Verdict = "allow"
    strength: dict[int, float] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Pool:
    """Requests of one population (or one campaign's recipe) with what the gateway stores for each."""

    ok: list[tuple[Any, ...]] = field(default_factory=list)
    refused: list[tuple[Any, ...]] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    stream: list[bool] = field(default_factory=list)
    before_release: list[int] = field(default_factory=list)


def _clip(text: str, head: int, tail: int) -> str:
    return text if len(text) <= head + tail + 3 else f"{text[:head]} … {text[-tail:]}"


def compact(body: dict[str, Any]) -> dict[str, Any]:
    """The request a terser client sends for the same thing: system prompt and last user turn only, each clipped
    (head and tail kept, so elicitation wrappers at either end stay), no tool schemas; the parameters as they were."""
    out = {k: v for k, v in body.items() if k not in ("messages", "prompt", "tools", "tool_choice")}
    messages = body.get("messages")
    if isinstance(messages, list):
        system = [m for m in messages[:1] if isinstance(m, dict) and m.get("role") in ("system", "developer")]
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        kept = [{**m, "content": _clip(str(m.get("content") or ""), 40, 20)} for m in system]
        kept += [{**m, "content": _clip(str(m.get("content") or ""), 60, 40)} for m in users[-1:]]
        out["messages"] = kept
    elif "prompt" in body:
        out["prompt"] = _clip(str(body["prompt"]), 60, 40)
    return out


def _entry(call: Call, scale: Scale, rng: random.Random) -> tuple[tuple[Any, ...], tuple[Any, ...], float, float]:
    """What the event log keeps of one call, served (``ok``) or refused; most requests compacted (Scale.full_share)."""
    if rng.random() >= scale.full_share:
        call = dataclasses.replace(call, body=compact(call.body))
    signals = extract(call.body, call.endpoint)
    request = orjson.dumps(call.body)
    reply = synthesize(call.style, call.lang, call.target_tokens, call.max_tokens, call.seed, call.labels)
    tokens = prompt_tokens(call)
    text, digest = retained_text(reply.text, "truncated", scale.text_chars) if reply.text is not None else (None, None)
    sig = (SIGNALS_VERSION, *as_row(signals))
    head = (call.endpoint, call.model, UPSTREAM, int(call.stream), request)
    ok = (*head, tokens, reply.completion_tokens, reply.finish_reason, text, digest, SCHEMA_VERSION, *sig)
    refused = (*head, None, None, None, None, None, SCHEMA_VERSION, *sig)
    ttft = TTFT_MS.get(call.model, 400.0) * (0.6 + rng.random()) + tokens * 0.04
    latency = ttft + reply.completion_tokens / SPEED.get(call.model, 60.0) * 1000.0
    return ok, refused, latency, ttft


def _add(pool: Pool, call: Call, scale: Scale, rng: random.Random) -> None:
    ok, refused, latency, ttft = _entry(call, scale, rng)
    if call.model != NEW:
        pool.before_release.append(len(pool.ok))
    pool.ok.append(ok)
    pool.refused.append(refused)
    pool.latency.append(latency)
    pool.ttft.append(ttft)
    pool.stream.append(call.stream)


def _sample_calls(actor: Actor, rng: random.Random, keep: int, scan: int) -> list[Call]:
    """A reservoir sample of ``keep`` of the actor's first ``scan`` planned calls (spread over its week)."""
    sample: list[Call] = []
    for i, call in enumerate(actor.calls()):
        if i >= scan:
            break
        if len(sample) < keep:
            sample.append(call)
        else:
            j = rng.randrange(i + 1)
            if j < keep:
                sample[j] = call
    return sample


def fingerprint(agent: str) -> str:
    """The gateway's header-order fingerprint: one per client library (its default headers, in its order)."""
    family = agent.split("/", 1)[0].split(" ", 1)[0]
    return "ho:" + hashlib.blake2b(family.encode(), digest_size=6).hexdigest()


def _addresses(actor: Actor, rng: random.Random, world: World, n: int) -> tuple[str, ...]:
    return tuple(actor.ips.ip(rng, world.start_us + rng.randrange(world.span_us)) for _ in range(n))


@dataclass
class Population:
    world: World
    accts: list[Acct]
    pools: list[Pool]
    pool_names: list[str]
    plans: list[Plan]
    # Hydra members' own simulated calls: (ts_us, account index, pool entry of their own, base latency, ttft).
    hydra_calls: list[tuple[int, int, tuple[Any, ...], tuple[Any, ...], float, float, bool]]


def build_population(scale: Scale, start: datetime, log: Callable[[str], None]) -> Population:
    """Accounts from the simulator's populations, their request pools, and the planted campaigns."""
    # One simulator run per small operation (a run with up to 22 members plants exactly one campaign), and one run
    # that plants eight large ones; the populations' accounts make up the rest.
    sizes = [
        max(5, min(22, round(size_rng.lognormvariate(math.log(8), 0.45))))
        for size_rng in [derive_rng(scale.seed, "campaign sizes")]
        for _ in range(scale.small_campaigns)
    ]
    runs = [*enumerate(sizes), (len(sizes), scale.large_campaign_members)]
    hydra_members = sum(n for _, n in runs)
    if hydra_members >= scale.accounts:
        raise ValueError(f"{scale.accounts} accounts are too few for {hydra_members} campaign members")
    config = SimulationConfig(
        accounts=scale.accounts - hydra_members,
        days=scale.days,
        seed=scale.seed,
        attack_share=scale.attack_share,
        start=start,
        populations={name: spec.weight for name, spec in POPULATIONS.items() if name != HYDRA},
    )
    world = World(config)
    rng = world.rng("console-bench")
    accts: list[Acct] = []
    pools: list[Pool] = []
    pool_names: list[str] = []
    for name, n in allocate(config).items():
        if n == 0:
            continue
        actors = POPULATIONS[name].build(world, n)
        pool = Pool()
        sampled = actors[: min(len(actors), 24)]
        for actor in sampled:
            for call in _sample_calls(actor, rng, 40, 4000):
                _add(pool, call, scale, rng)
        pools.append(pool)
        pool_names.append(name)
        for actor in actors:
            accts.append(
                Acct(len(accts), actor.profile, _addresses(actor, rng, world, 4), actor.user_agents[:2], len(pools) - 1)
            )
        log(f"  {name}: {n} accounts, {len(pool.ok)} sampled requests")
        del actors
    plans: list[Plan] = []
    hydra_calls: list[tuple[int, int, tuple[Any, ...], tuple[Any, ...], float, float, bool]] = []
    for run, n in runs:
        sub = World(SimulationConfig(accounts=n, days=scale.days, seed=scale.seed * 1_000_003 + run, start=start))
        members = hydra.build(sub, n)
        by_campaign: dict[str, list[hydra.HydraMember]] = defaultdict(list)
        for m in members:
            assert isinstance(m, hydra.HydraMember)
            by_campaign[m.campaign.campaign_id].append(m)
        for group in by_campaign.values():
            pool = Pool()
            plan = Plan([], group[0].campaign)
            for member in group:
                acct = Acct(
                    len(accts), member.profile, _addresses(member, rng, world, 6), member.user_agents[:2], len(pools)
                )
                accts.append(acct)
                for call in member.calls():
                    if not world.start_us <= call.ts_us < world.end_us:
                        continue  # cover traffic of members created before the week, or planned after it
                    ok, refused, latency, ttft = _entry(call, scale, rng)
                    hydra_calls.append((call.ts_us, acct.index, ok, refused, latency, ttft, call.stream))
                    if len(pool.ok) < 60:
                        _add(pool, call, scale, rng)
                    if acct.campaign < 0:  # the clustering sees only members that called during the week
                        acct.campaign = len(plans)
                        plan.members.append(acct.index)
            if plan.members:
                pools.append(pool)
                pool_names.append(f"{HYDRA}:{group[0].campaign.campaign_id}")
                plans.append(plan)
    log(f"  {HYDRA}: {sum(len(p.members) for p in plans)} accounts in {len(plans)} campaigns")
    # Benign teams the clustering links (one card, one system prompt) and judges harmless.
    by_org: dict[str, list[Acct]] = defaultdict(list)
    for a in accts:
        if a.profile.label == "benign" and a.profile.org_id and a.profile.payment_fingerprint:
            by_org[a.profile.org_id].append(a)
    teams = sorted((g for g in by_org.values() if len(g) >= 2), key=lambda g: (-len(g), g[0].profile.account_id))
    for team in teams[: scale.benign_clusters]:
        plan = Plan([a.index for a in team], None)
        for a in team:
            a.campaign = len(plans)
        plans.append(plan)
    ids = [a.profile.account_id for a in accts]
    if len(set(ids)) != len(ids):
        raise RuntimeError("account ids collide across simulator runs; change the seed")
    hydra_calls.sort(key=lambda c: (c[0], c[1]))
    return Population(world, accts, pools, pool_names, plans, hydra_calls)


# ----------------------------------------------------------------------------------------------- volumes, time
def assign_volumes(pop: Population, scale: Scale, rng: np.random.Generator) -> None:
    """Calls per account: hydra members keep their simulated calls; the others share the rest of ``scale.events``
    in proportion to log-normal draws, with the heaviest account set to ``scale.heavy_events``."""
    hydra_count = Counter(c[1] for c in pop.hydra_calls)
    budget = scale.events - sum(hydra_count.values())
    others = [a for a in pop.accts if a.profile.population != HYDRA]
    if budget < len(others):
        raise ValueError(f"{scale.events} events are too few for {scale.accounts} accounts")
    raw = np.array(
        [
            VOLUMES[a.profile.population].median * math.exp(rng.normal(0.0, VOLUMES[a.profile.population].sigma))
            for a in others
        ]
    )
    heavy = int(np.argmax(raw))
    heavy_events = min(scale.heavy_events, budget // 4)
    rest = budget - heavy_events - len(others)  # every account calls at least once
    share = raw.copy()
    share[heavy] = 0.0
    counts = np.floor(share / share.sum() * rest).astype(np.int64) + 1
    counts[heavy] = heavy_events
    counts[np.argsort(-share)[: budget - int(counts.sum())]] += 1  # rounding: the largest get the remainder
    for a, n in zip(others, counts, strict=True):
        a.events = int(n)
    for a in pop.accts:
        if a.index in hydra_count:
            a.events = hydra_count[a.index]
        lo, hi = VOLUMES.get(a.profile.population, VOLUMES["casual_chat"]).refused
        a.refused = float(rng.uniform(lo, hi))


def hour_matrix(pop: Population, scale: Scale, rng: np.random.Generator) -> npt.NDArray[np.uint16]:
    """Calls of each (non-hydra) account per hour of the week: active days, a diurnal profile in its time zone."""
    world = pop.world
    hours = int(world.span_us // HOUR_US)
    days = (hours + 23) // 24
    matrix = np.zeros((len(pop.accts), hours), dtype=np.uint16)
    start_hour = world.start_us // HOUR_US
    local_weekday = ((start_hour + np.arange(hours)) // 24 + 3) % 7  # 1970-01-01 was a Thursday
    for a in pop.accts:
        if a.events == 0 or a.profile.population == HYDRA:
            continue
        v = VOLUMES.get(a.profile.population, VOLUMES["casual_chat"])
        tz = a.profile.tz_offset_h
        daily = np.array(utc_weights(v.profile, tz))
        active = rng.random(days) < rng.uniform(*v.day_share)
        if not active.any():
            active[rng.integers(days)] = True
        weights = np.tile(daily, days)[:hours] * np.repeat(active, 24)[:hours]
        weekday = (local_weekday + (np.arange(hours) % 24 + tz) // 24) % 7
        weights = weights * np.where(weekday >= 5, v.weekend, 1.0)
        created_hour = (a.profile.created_at_us - world.start_us) // HOUR_US
        if created_hour > 0:
            weights[: min(hours - 1, created_hour)] = 0.0
        if weights.sum() <= 0:
            weights[-1] = 1.0
        counts = rng.multinomial(a.events, weights / weights.sum())
        if counts.max() > np.iinfo(np.uint16).max:
            raise ValueError(f"account {a.profile.account_id} calls more than 65535 times in an hour")
        matrix[a.index] = counts
    return matrix


def activity(pop: Population, matrix: npt.NDArray[np.uint16]) -> tuple[Ints, Ints]:
    """Each account's first and last call (epoch us): hour starts and ends from the matrix, exact for hydra members."""
    start = pop.world.start_us
    active = matrix > 0
    has = active.any(axis=1)
    first_h = active.argmax(axis=1).astype(np.int64)
    last_h = (matrix.shape[1] - 1 - active[:, ::-1].argmax(axis=1)).astype(np.int64)
    first = np.where(has, start + first_h * HOUR_US, np.iinfo(np.int64).max)
    last = np.where(has, start + last_h * HOUR_US + HOUR_US - 1, -1)
    for ts, index, *_ in pop.hydra_calls:
        first[index] = min(int(first[index]), ts)
        last[index] = max(int(last[index]), ts)
    return first, last
