"""Campaign clustering at scale: ``find_campaigns`` over synthetic traffic with planted hydra campaigns.

    .venv/bin/python bench/clusters.py [--accounts 100000] [--events 10000000] [--rules-only]
    .venv/bin/python bench/clusters.py --scales 10000,30000,100000 [--out bench/results/clusters.json]

Target: 100,000 accounts and 10,000,000 events clustered in <= 10 minutes on a 2-core machine, and a statement of
how the cost grows with the number of accounts. ``--scales`` runs several sizes with the events in proportion
(``--events / --accounts`` per account, 100 by default); each size runs in a fresh interpreter so that its peak
RSS is its own.

Traffic (seeded, deterministic, streamed: the rows are generated one hour at a time, sorted, and yielded, so both
passes of ``find_campaigns`` see the same rows in time order without 10M rows in memory) covers 7 days:

- benign accounts (99%): casual users drawing from a Zipf-distributed pool of prompt skeletons with distinct
  contents, half of them behind one of a handful of common system prompts; app developers (in orgs of 1-4
  accounts sharing private templates, a system prompt, a cloud address and a card) who also use popular coding
  templates; heavy-tailed volumes, active windows of a few days, diurnal load, sessions; home addresses from a
  residential pool, mobile carrier CGNAT addresses, and six big NAT / cloud-egress addresses used by thousands;
  common SDK user agents; a new model released on day 3 that benign accounts adopt over two days;
- planted hydra campaigns (1% of the accounts, at least two campaigns; 50-500 members each): one recipe (one or
  two templates, a system prompt, CoT / encyclopaedic / log-probability harvesting), disjoint slices of one
  source as contents, a rotating proxy pool shared by the members, a script user agent, a few cards, a throwaway
  mail domain for most, sign-up waves (members created within 90 minutes), synchronised pulses every 20-40
  minutes in which participating members call within seconds, some cover traffic, and for half of them a pivot
  to the new model within hours of its release.

Per scale: stage timings (the generator on its own, the profile pass, Context / blocking / pair tests / Leiden
inside ``communities``, the union replay in ``judge``, ``find_campaigns`` end to end), pairs tested, links,
campaigns, peak RSS, and quality on the planted campaigns: adjusted Rand index of the found clusters against the
planted campaigns over the campaign accounts (unclustered accounts are singletons), the share of campaign
accounts clustered and flagged, and the share of benign accounts put in a cluster whose verdict is throttle or
stronger. Figures go to bench/results/clusters.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from unittest import mock

import leidenalg
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table
from sklearn.metrics import adjusted_rand_score

import distillguard.clusters.find as find_mod
import distillguard.clusters.graph as graph_mod
from distillguard.detect.model import RiskModel, shipped_model_available
from distillguard.detect.scorer import OnlineScorer
from distillguard.detect.signals import extract
from distillguard.detect.verdicts import FLAGGED
from distillguard.events.readers import Client, Row
from distillguard.events.signals import RequestSignals
from distillguard.store.models import Account

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
P = ParamSpec("P")
R = TypeVar("R")

US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
START_US = 1_793_059_200_000_000  # a midnight (UTC)
DAYS = 7
SLICE_US = HOUR_US
SLICES = DAYS * DAY_US // SLICE_US
END_US = START_US + DAYS * DAY_US
RELEASE_US = START_US + 3 * DAY_US + 5 * HOUR_US  # the new model appears (well after the first 24 h)
MODELS = ("frontier-1", "frontier-mini", "frontier-2")
NEW_MODEL = 2

CAMPAIGN_SHARE = 0.01
CAMPAIGN_MIN, CAMPAIGN_MAX = 50, 500
CASUAL_SUBPOOL = 4000  # signals per casual sub-pool (one per common system prompt, and one without)
CASUAL_TEMPLATES = 6000
POPULAR_TEMPLATES, POPULAR_POOL = 30, 3000
COMMON_SYSTEMS = 5
APP_SHARE = 0.3
APP_VARIANTS = 4  # content variants per private app template
BIG_NATS = (0.025, 0.02, 0.012, 0.01, 0.008, 0.005)  # share of benign accounts behind each big shared address
COMMON_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com", "qq.com")
SDK_AGENTS = (
    "OpenAI/Python 1.54.3", "OpenAI/Python 1.68.2", "OpenAI/Python 2.8.1", "OpenAI/Python 3.12.0",
    "OpenAI/Python 3.41.2", "OpenAI/Python 1.35.10", "OpenAI/JS 4.77.0", "OpenAI/JS 5.23.2", "OpenAI/JS 6.15.3",
    "python-requests/2.32.3", "python-requests/2.31.0", "curl/8.5.0", "python-httpx/0.28.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1",
    "LangChain/0.3.7 OpenAI/Python 1.54.3", "llama-index/0.12.2", "Go-http-client/2.0", "okhttp/4.12.0",
    "OpenAI/Python 1.93.0",
)  # fmt: skip
SCRIPT_AGENTS = (
    "Python/3.11 aiohttp/3.9.5", "python-httpx/0.27.0", "python-requests/2.28.1", "harvest/0.4 (+aiohttp)",
    "Go-http-client/1.1", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "curl/7.81.0",
)  # fmt: skip
DOMAINS = ("general", "code", "writing", "science", "math", "business")
DOMAIN_WEIGHTS = (0.5, 0.15, 0.15, 0.08, 0.07, 0.05)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


# ------------------------------------------------------------------------------------------------- signals
def _chat(user: str, system: str | None = None, **params: Any) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return {"model": MODELS[0], "messages": messages, **params}


def prototypes() -> dict[str, RequestSignals]:
    """Real signals of a few kinds of request; the pools vary their templates, contents and system prompts."""
    return {
        "casual": extract(_chat("what is a good book about black holes? something light please")),
        "student_cot": extract(_chat("Think step by step: why does ice float on water? explain it to me")),
        "code": extract(
            _chat("Write a Python function that parses an ISO date and returns the weekday", "You are a coder.")
        ),
        "app": extract(
            _chat("Classify this support ticket as billing, shipping or other: order 123 arrived late", "Triage.")
        ),
        "cot": extract(
            _chat(
                "Think step by step and show all of your reasoning before answering: A train leaves at 3pm at "
                "60 mph; when does it arrive 150 miles away?",
                "You are a meticulous tutor. Always reason step by step.",
                max_tokens=2048,
                temperature=0.7,
            )
        ),
        "broad": extract(
            _chat(
                "Question: What is the boiling point of ethanol?\nAnswer:",
                "You are an encyclopedia. Answer accurately and completely.",
                max_tokens=1024,
            )
        ),
        "logprob": extract(_chat("The capital of France is", max_tokens=1, logprobs=True, top_logprobs=20)),
    }


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _zipf_cdf(n: int, exponent: float) -> Floats:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf: Floats = np.cumsum(weights)
    normalised: Floats = cdf / cdf[-1]
    return normalised


def _mix(x: Ints) -> Ints:
    """A well-mixed non-negative hash of each value (SplitMix64's finaliser), as int64."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    mixed: Ints = (z >> np.uint64(1)).astype(np.int64)
    return mixed


def _pick(cdf: Floats, u: float) -> int:
    return int(np.searchsorted(cdf, u, side="right"))


# --------------------------------------------------------------------------------------------------- world
@dataclass
class World:
    """Accounts, the shared objects rows point at, and what the per-hour generator needs."""

    seed: int
    account_ids: list[str]
    accounts: dict[str, Account]
    campaign_of: list[int]  # planted campaign per account, -1 for benign
    sigs: list[RequestSignals]
    clients: list[Client]
    # Benign generation, per account.
    weight: Floats
    active_from: Ints  # first slice
    active_to: Ints  # slice after the last
    casual_base: Ints
    app_base: Ints
    app_n: Ints
    home: Ints
    alt: Ints  # -1: none
    adopt: Floats
    mini: Floats
    slice_events: Ints
    # Campaign events, sorted by time.
    c_ts: Ints
    c_acct: Ints
    c_sig: Ints
    c_client: Ints
    c_model: Ints
    c_prompt: Ints
    c_completion: Ints

    @property
    def events(self) -> int:
        return int(self.slice_events.sum()) + len(self.c_ts)

    def rows(self) -> Iterator[Row]:
        """Every event, in time order: generated an hour at a time (the same rows on every call)."""
        ids, sigs, clients, models = self.account_ids, self.sigs, self.clients, MODELS
        for s in range(SLICES):
            t0 = START_US + s * SLICE_US
            rng = np.random.default_rng([self.seed, s])
            n = int(self.slice_events[s])
            weights = np.where((self.active_from <= s) & (s < self.active_to), self.weight, 0.0)
            cdf = np.cumsum(weights)
            acct = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").astype(np.int64)
            # Sessions: an account's calls in one hour gather around a point of the hour (its own, every hour).
            centre = _mix(acct * SLICES + s + self.seed * 1_000_003) % SLICE_US
            ts = t0 + ((centre + rng.normal(0.0, 4 * MINUTE_US, n)) % SLICE_US).astype(np.int64)
            u = rng.random(n)
            casual = self.casual_base[acct] + rng.integers(0, CASUAL_SUBPOOL, n)
            app_n = self.app_n[acct]
            private = self.app_base[acct] + rng.integers(0, 1 << 30, n) % np.maximum(app_n, 1)
            popular = POPULAR_BASE + rng.integers(0, POPULAR_POOL, n)
            sig = np.where(app_n > 0, np.where(u < 0.55, private, np.where(u < 0.75, popular, casual)), casual)
            alt = self.alt[acct]
            client = np.where((alt >= 0) & (rng.random(n) < 0.2), alt, self.home[acct])
            ramp = np.clip((ts - RELEASE_US) / (2 * DAY_US), 0.0, 1.0)
            v = rng.random(n)
            model = np.where(v < self.adopt[acct] * ramp, NEW_MODEL, np.where(v > 1.0 - self.mini[acct], 1, 0))
            prompt = rng.integers(20, 900, n)
            completion = rng.integers(30, 1200, n)
            lo, hi = np.searchsorted(self.c_ts, [t0, t0 + SLICE_US])
            if hi > lo:
                ts = np.concatenate([ts, self.c_ts[lo:hi]])
                acct = np.concatenate([acct, self.c_acct[lo:hi]])
                sig = np.concatenate([sig, self.c_sig[lo:hi]])
                client = np.concatenate([client, self.c_client[lo:hi]])
                model = np.concatenate([model, self.c_model[lo:hi]])
                prompt = np.concatenate([prompt, self.c_prompt[lo:hi]])
                completion = np.concatenate([completion, self.c_completion[lo:hi]])
            order = np.argsort(ts, kind="stable")
            for t, a, g, c, m, p, q in zip(
                ts[order].tolist(),
                acct[order].tolist(),
                sig[order].tolist(),
                client[order].tolist(),
                model[order].tolist(),
                prompt[order].tolist(),
                completion[order].tolist(),
                strict=True,
            ):
                yield (t, ids[a], 200, p, q, models[m], sigs[g], clients[c])


POPULAR_BASE = (COMMON_SYSTEMS + 1) * CASUAL_SUBPOOL


class _Interner:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.index: dict[tuple[str, str], int] = {}

    def __call__(self, ip: str, agent: str) -> int:
        key = (ip, agent)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.clients)
            self.clients.append(Client(ip, agent))
        return found


def _ipv4(rng: random.Random, first: tuple[int, ...] | None = None) -> str:
    a = rng.choice(first) if first else rng.choice((24, 31, 46, 62, 73, 77, 81, 86, 91, 98, 109, 151, 176, 188))
    return f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _residential(rng: random.Random) -> str:
    if rng.random() < 0.08:
        return f"2a02:{rng.randrange(0x1000, 0xFFFF):x}:{rng.randrange(0xFFFF):x}:{rng.randrange(0xFFFF):x}::1"
    return _ipv4(rng)


def _when(us: int) -> datetime:
    return datetime.fromtimestamp(us / US, UTC)


def _campaign_sizes(rng: random.Random, n_accounts: int) -> list[int]:
    total = max(2 * CAMPAIGN_MIN, round(n_accounts * CAMPAIGN_SHARE))
    sizes: list[int] = []
    while total > 0:
        size = round(math.exp(rng.uniform(math.log(CAMPAIGN_MIN), math.log(CAMPAIGN_MAX))))
        if not sizes:  # at least two campaigns
            size = min(size, total - CAMPAIGN_MIN)
        if total - size < CAMPAIGN_MIN:
            size = total
        sizes.append(size)
        total -= size
    return sizes


def build_world(n_accounts: int, n_events: int, seed: int) -> World:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    proto = prototypes()
    sigs: list[RequestSignals] = []
    client = _Interner()

    # Casual pools: one without a system prompt and one per common system prompt; Zipf-popular skeletons.
    templates = [_hex(rng) for _ in range(CASUAL_TEMPLATES)]
    template_cdf = _zipf_cdf(CASUAL_TEMPLATES, 1.1)
    domain_cdf = np.cumsum(DOMAIN_WEIGHTS) / sum(DOMAIN_WEIGHTS)
    systems: list[str | None] = [None, *(_hex(rng) for _ in range(COMMON_SYSTEMS))]
    for system in systems:
        for _ in range(CASUAL_SUBPOOL):
            kind = proto["student_cot"] if rng.random() < 0.03 else proto["casual"]
            sigs.append(
                dataclasses.replace(
                    kind,
                    template_id=templates[_pick(template_cdf, rng.random())],
                    content_sig=rng.getrandbits(64),
                    system_prompt_hash=system,
                    domain=DOMAINS[_pick(domain_cdf, rng.random())],
                    prompt_chars=rng.randrange(20, 2000),
                )
            )
    popular = [_hex(rng) for _ in range(POPULAR_TEMPLATES)]
    popular_cdf = _zipf_cdf(POPULAR_TEMPLATES, 1.0)
    assert len(sigs) == POPULAR_BASE
    for _ in range(POPULAR_POOL):
        sigs.append(
            dataclasses.replace(
                proto["code"],
                template_id=popular[_pick(popular_cdf, rng.random())],
                content_sig=rng.getrandbits(64),
                system_prompt_hash=rng.choice(systems[1:3]),
            )
        )

    # Which accounts are planted campaign members.
    sizes = _campaign_sizes(rng, n_accounts)
    order = nrng.permutation(n_accounts).tolist()
    campaign_of = [-1] * n_accounts
    members: list[list[int]] = []
    at = 0
    for k, size in enumerate(sizes):
        members.append(sorted(order[at : at + size]))
        for i in members[-1]:
            campaign_of[i] = k
        at += size
    benign = [i for i in range(n_accounts) if campaign_of[i] < 0]
    account_ids = [f"acct_{i:07d}" for i in range(n_accounts)]
    accounts: dict[str, Account] = {}

    weight = np.zeros(n_accounts)
    active_from = np.zeros(n_accounts, dtype=np.int64)
    active_to = np.full(n_accounts, SLICES, dtype=np.int64)
    casual_base = np.zeros(n_accounts, dtype=np.int64)
    app_base = np.zeros(n_accounts, dtype=np.int64)
    app_n = np.zeros(n_accounts, dtype=np.int64)
    home = np.zeros(n_accounts, dtype=np.int64)
    alt = np.full(n_accounts, -1, dtype=np.int64)
    adopt = np.zeros(n_accounts)
    mini = np.zeros(n_accounts)

    # Benign volumes (heavy-tailed), activity windows, models.
    volumes = nrng.lognormal(0.0, 1.3, len(benign))
    weight[benign] = volumes / volumes.mean()
    system_cdf = _zipf_cdf(COMMON_SYSTEMS, 1.0)
    agent_cdf = _zipf_cdf(len(SDK_AGENTS), 0.9)
    nat_ips = [_ipv4(rng, (3, 34, 52, 129, 141, 193)) for _ in BIG_NATS]
    nat_cdf = np.cumsum(BIG_NATS)
    cgnat = [_ipv4(rng, (100, 172, 174)) for _ in range(max(50, n_accounts // 50))]
    residential = [_residential(rng) for _ in range(max(100, int(len(benign) * 0.9)))]

    is_app = {i for i in benign if rng.random() < APP_SHARE}
    apps = [i for i in benign if i in is_app]
    rng.shuffle(apps)
    org_of: dict[int, int] = {}
    org_meta: list[tuple[str | None, str | None, int]] = []  # (card, mail domain, home client)
    at = 0
    while at < len(apps):
        size = min(len(apps) - at, 1 + min(3, int(rng.expovariate(1.2))))
        org = len(org_meta)
        base, n_templates = len(sigs), rng.choice((1, 1, 2, 2, 3))
        system = _hex(rng) if rng.random() < 0.9 else rng.choice(systems[1:])
        domain = DOMAINS[_pick(domain_cdf, rng.random())]
        for _ in range(n_templates):
            template = _hex(rng)
            for _ in range(APP_VARIANTS):
                sigs.append(
                    dataclasses.replace(
                        proto["app"],
                        template_id=template,
                        content_sig=rng.getrandbits(64),
                        system_prompt_hash=system,
                        domain=domain,
                    )
                )
        server = client(_ipv4(rng, (3, 13, 18, 34, 35, 52, 54, 104, 137, 20)), rng.choice(SDK_AGENTS[:9]))
        org_meta.append(
            (_hex(rng) if rng.random() < 0.8 else None, f"org{org}.example.com" if rng.random() < 0.7 else None, server)
        )
        for i in apps[at : at + size]:
            org_of[i] = org
            app_base[i] = base
            app_n[i] = n_templates * APP_VARIANTS
        at += size

    for i in benign:
        created = START_US - int(rng.uniform(1, 730) * DAY_US) if rng.random() < 0.95 else None
        if created is None:  # signed up during the week
            created = START_US + int(rng.random() * 0.9 * DAYS * DAY_US)
            active_from[i] = (created - START_US) // SLICE_US + 1
        if rng.random() < 0.35:
            first = max(int(active_from[i]), rng.randrange(SLICES))
            active_from[i] = first
            active_to[i] = min(SLICES, first + rng.randrange(12, 5 * 24))
        active_to[i] = max(active_to[i], active_from[i] + 1)
        agent = SDK_AGENTS[_pick(agent_cdf, rng.random())]
        u = rng.random()
        if u < nat_cdf[-1]:
            home[i] = client(nat_ips[_pick(nat_cdf / nat_cdf[-1], u / nat_cdf[-1])], agent)
        else:
            home[i] = client(rng.choice(residential), agent)
        if rng.random() < 0.35:
            alt[i] = client(rng.choice(cgnat), agent if rng.random() < 0.7 else rng.choice(SDK_AGENTS))
        if rng.random() < 0.55:
            casual_base[i] = (1 + _pick(system_cdf, rng.random())) * CASUAL_SUBPOOL
        if rng.random() < 0.4:
            adopt[i] = rng.uniform(0.2, 0.9)
        if rng.random() < 0.25:
            mini[i] = 0.5
        card: str | None = _hex(rng) if rng.random() < 0.55 else None
        mail: str | None = rng.choice(COMMON_MAIL)
        org_id = None
        if i in org_of:
            org_card, org_mail, server = org_meta[org_of[i]]
            card, mail, org_id = org_card or card, org_mail or mail, f"org_{org_of[i]}"
            alt[i], home[i] = home[i], server  # runs on the org's server, sometimes from the developer's laptop
        accounts[account_ids[i]] = Account(
            account_ids[i],
            org_id=org_id,
            tier=rng.choice(("free", "free", "standard", "pro")),
            created_at=_when(created),
            verified=rng.random() < 0.3,
            payment_fingerprint=card,
            email_domain=mail,
            country=rng.choice(("US", "DE", "IN", "BR", "GB", "FR", "JP")),
        )

    # Campaigns: the schedule of every member's calls, fixed up front (a few per cent of the events).
    events: list[tuple[int, int, int, int, int, int, int]] = []
    proxy_provider = [_residential(rng) for _ in range(20_000)]
    datacenter = [_ipv4(rng, (45, 91, 185, 193, 194)) for _ in range(3000)]
    for k, group in enumerate(members):
        events += _campaign(rng, k, group, account_ids, accounts, sigs, client, proto, proxy_provider, datacenter)
    events.sort()
    c = np.array(events, dtype=np.int64).reshape(-1, 7)

    # Benign events per hour: diurnal load, the rest of the total.
    benign_events = max(0, n_events - len(events))
    hours = (np.arange(SLICES) % 24).astype(np.float64)
    load = 1.0 + 0.55 * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
    exact = benign_events * load / load.sum()
    slice_events = np.floor(exact).astype(np.int64)
    slice_events[: benign_events - int(slice_events.sum())] += 1

    return World(
        seed=seed,
        account_ids=account_ids,
        accounts=accounts,
        campaign_of=campaign_of,
        sigs=sigs,
        clients=client.clients,
        weight=weight,
        active_from=active_from,
        active_to=active_to,
        casual_base=casual_base,
        app_base=app_base,
        app_n=app_n,
        home=home,
        alt=alt,
        adopt=adopt,
        mini=mini,
        slice_events=slice_events,
        c_ts=c[:, 0].copy(),
        c_acct=c[:, 1].copy(),
        c_sig=c[:, 2].copy(),
        c_client=c[:, 3].copy(),
        c_model=c[:, 4].copy(),
        c_prompt=c[:, 5].copy(),
        c_completion=c[:, 6].copy(),
    )


def _campaign(
    rng: random.Random,
    k: int,
    group: list[int],
    account_ids: list[str],
    accounts: dict[str, Account],
    sigs: list[RequestSignals],
    client: _Interner,
    proto: dict[str, RequestSignals],
    provider: list[str],
    datacenter: list[str],
) -> list[tuple[int, int, int, int, int, int, int]]:
    """One hydra campaign: its members' accounts (added to ``accounts``), signals (to ``sigs``), and calls."""
    kind = rng.choices(("cot", "broad", "logprob"), weights=(3, 2, 1))[0]
    recipe = proto[kind]
    templates = [_hex(rng) for _ in range(rng.choice((1, 2)))]
    system = _hex(rng) if kind != "logprob" or rng.random() < 0.5 else None
    domain = {"cot": "math", "broad": "science", "logprob": "general"}[kind]
    n_proxies = rng.randrange(40, 600)
    n_residential = round(n_proxies * rng.uniform(0.5, 0.95))
    proxies = rng.sample(provider, n_residential) + rng.sample(datacenter, n_proxies - n_residential)
    script = rng.choice(SCRIPT_AGENTS)
    other = rng.choice(SCRIPT_AGENTS)
    cards = [_hex(rng) for _ in range(rng.randrange(1, 6))]
    throwaway = f"mx{rng.randrange(10**6)}.{rng.choice(('xyz', 'top', 'site', 'online'))}"
    mail_domain = throwaway if rng.random() < 0.6 else None
    pivot = RELEASE_US + int(rng.uniform(0.5, 6.0) * HOUR_US) if rng.random() < 0.5 else None
    period = rng.uniform(20, 40) * MINUTE_US
    pulses: list[int] = []
    ts = START_US + rng.random() * period
    while ts < END_US:
        pulses.append(int(ts))
        ts += period * rng.uniform(0.7, 1.3)
    waves = [START_US - int(rng.uniform(0.2, 5.0) * DAY_US)]
    waves += sorted(START_US + int(rng.random() * 0.7 * DAYS * DAY_US) for _ in range(rng.randrange(0, 4)))
    cover_share = rng.uniform(0.05, 0.3)

    def tokens(prompt_kind: str) -> tuple[int, int]:
        if prompt_kind == "logprob":
            return rng.randrange(8, 40), 1
        if prompt_kind == "cot":
            return rng.randrange(80, 300), rng.randrange(600, 2000)
        return rng.randrange(30, 120), rng.randrange(200, 900)

    out: list[tuple[int, int, int, int, int, int, int]] = []
    for i in group:
        wave = waves[0] if rng.random() < 0.6 or len(waves) == 1 else rng.choice(waves[1:])
        created = wave + int(rng.random() * 90 * MINUTE_US)
        accounts[account_ids[i]] = Account(
            account_ids[i],
            tier="free" if rng.random() < 0.85 else "standard",
            created_at=_when(created),
            payment_fingerprint=rng.choice(cards) if rng.random() < 0.7 else None,
            email_domain=mail_domain if mail_domain and rng.random() < 0.85 else rng.choice(COMMON_MAIL),
            country=rng.choice(("US", "SG", "HK", "NL")),
        )
        # A new exit per request, or sticky sessions on a few exits.
        exits = proxies if rng.random() < 0.7 else rng.sample(proxies, 3)
        budget = min(90, max(15, round(rng.lognormvariate(math.log(35), 0.5))))
        cover = round(budget * cover_share)
        sweep = budget - cover
        active = max(START_US, created + int(rng.uniform(0.2, 12.0) * HOUR_US))
        mine = [p for p in pulses if p >= active]
        if not mine:
            continue
        per_pulse = rng.choice((1, 1, 2, 2, 3, 4))
        participation = min(1.0, sweep / (per_pulse * len(mine)) * rng.uniform(1.0, 2.0))
        planned: list[int] = []
        for pulse in mine:
            if len(planned) >= sweep:
                break
            if rng.random() < participation:
                t = pulse + int(rng.random() * 20 * US)  # the scheduler's jitter: seconds
                for _ in range(min(per_pulse, sweep - len(planned))):
                    planned.append(t)
                    t += int(rng.uniform(0.5, 4.0) * US)
        end = planned[-1] if planned else END_US - 1
        for n, t in enumerate(planned):  # the member's slice of the source: contents nobody else sends
            sigs.append(
                dataclasses.replace(
                    recipe,
                    template_id=templates[n % len(templates)],
                    content_sig=rng.getrandbits(64),
                    system_prompt_hash=system,
                    domain=domain,
                )
            )
            agent = script if rng.random() < 0.85 else other
            model = NEW_MODEL if pivot is not None and t >= pivot else 0
            out.append((t, i, len(sigs) - 1, client(rng.choice(exits), agent), model, *tokens(kind)))
        for _ in range(cover):  # cover traffic: casual questions at unsynchronised times
            t = active + int(rng.random() * max(1, end - active))
            sig = rng.randrange(CASUAL_SUBPOOL)
            model = NEW_MODEL if pivot is not None and t >= pivot else 0
            out.append((t, i, sig, client(rng.choice(exits), script), model, *tokens("casual")))
    return out


# ------------------------------------------------------------------------------------------------- measure
def _timed(fn: Callable[P, R], name: str, into: dict[str, float]) -> Callable[P, R]:
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - t0
            if name != "describe":
                log(f"  {name}: {into[name]:.1f} s")

    return wrapper


def run_scale(n_accounts: int, n_events: int, seed: int, rules_only: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    world = build_world(n_accounts, n_events, seed)
    setup_s = time.perf_counter() - t0
    rss_setup = peak_rss_mb()
    log(f"{n_accounts} accounts: world built in {setup_s:.1f} s ({len(world.sigs)} signals, {rss_setup:.0f} MB)")

    t0 = time.perf_counter()
    generated = sum(1 for _ in world.rows())
    generator_s = time.perf_counter() - t0
    log(f"  generator alone: {generated} rows in {generator_s:.1f} s")

    model = None if rules_only or not shipped_model_available() else RiskModel.load()
    scorer = OnlineScorer(model=model)
    stages: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        for module, name, label in (
            (find_mod, "build_profiles", "profiles"),
            (find_mod, "communities", "communities"),
            (find_mod, "describe", "describe"),
            (find_mod, "judge", "judge"),
            (graph_mod, "Context", "context"),
            (graph_mod, "candidate_pairs", "blocking"),
            (leidenalg, "find_partition", "leiden"),
        ):
            stack.enter_context(mock.patch.object(module, name, _timed(getattr(module, name), label, stages)))
        t0 = time.perf_counter()
        campaigns, stats = find_mod.find_campaigns(world.rows, world.accounts, scorer, seed)
        total_s = time.perf_counter() - t0
    log(f"  find_campaigns: {total_s:.1f} s, {stats}")

    # Quality against the planted campaigns.
    cluster_of: dict[str, str] = {}
    verdict_of: dict[str, str] = {}
    for c in campaigns:
        for m in c.members:
            cluster_of[m] = c.cluster_id
            verdict_of[m] = c.verdict
    planted = [(a, k) for a, k in zip(world.account_ids, world.campaign_of, strict=True) if k >= 0]
    truth = [k for _, k in planted]
    found = [cluster_of.get(a, "single:" + a) for a, _ in planted]
    benign = [a for a, k in zip(world.account_ids, world.campaign_of, strict=True) if k < 0]
    planted_of = dict(zip(world.account_ids, world.campaign_of, strict=True))
    campaign_clusters = sum(1 for c in campaigns if sum(planted_of[m] >= 0 for m in c.members) * 2 > len(c.members))
    one_org = sum(1 for c in campaigns if len({world.accounts[m].org_id or m for m in c.members}) == 1)
    quality = {
        "planted_campaigns": len(set(truth)),
        "campaign_accounts": len(planted),
        "ari": round(float(adjusted_rand_score(truth, found)), 4),
        "campaign_accounts_clustered": round(sum(a in cluster_of for a, _ in planted) / len(planted), 4),
        "campaign_accounts_flagged": round(sum(verdict_of.get(a) in FLAGGED for a, _ in planted) / len(planted), 4),
        "clusters_mostly_campaign": campaign_clusters,
        "clusters_mostly_benign": len(campaigns) - campaign_clusters,
        "clusters_one_org": one_org,
        "benign_accounts_clustered": round(sum(a in cluster_of for a in benign) / len(benign), 6),
        "benign_accounts_flagged_by_cluster": round(sum(verdict_of.get(a) in FLAGGED for a in benign) / len(benign), 6),
        "cluster_verdicts": dict(Counter(c.verdict for c in campaigns)),
    }
    links_s = stages.get("communities", 0.0) - sum(stages.get(k, 0.0) for k in ("context", "blocking", "leiden"))
    return {
        "accounts": n_accounts,
        "events": world.events,
        "model": model.version if model is not None else "rules only",
        "seconds": {
            "world_setup": round(setup_s, 2),
            "generator_one_pass": round(generator_s, 2),
            "profiles": round(stages.get("profiles", 0.0), 2),
            "profiles_net_of_generator": round(stages.get("profiles", 0.0) - generator_s, 2),
            "communities": round(stages.get("communities", 0.0), 2),
            "context": round(stages.get("context", 0.0), 2),
            "blocking": round(stages.get("blocking", 0.0), 2),
            "pair_tests_and_graph": round(links_s, 2),
            "leiden": round(stages.get("leiden", 0.0), 2),
            "describe": round(stages.get("describe", 0.0), 2),
            "judge": round(stages.get("judge", 0.0), 2),
            "judge_net_of_generator": round(stages.get("judge", 0.0) - generator_s, 2),
            "find_campaigns": round(total_s, 2),
            "find_campaigns_net_of_generator": round(total_s - 2 * generator_s, 2),
        },
        "pairs_tested": stats.pairs_tested,
        "links": stats.links,
        "campaigns": stats.campaigns,
        "clustered_accounts": stats.clustered_accounts,
        "quality": quality,
        "peak_rss_mb": {"after_world_setup": round(rss_setup), "total": round(peak_rss_mb())},
    }


def _growth(results: list[dict[str, Any]]) -> dict[str, Any]:
    per_1k = {str(r["accounts"]): round(r["seconds"]["find_campaigns"] / (r["accounts"] / 1000), 3) for r in results}
    out: dict[str, Any] = {"find_campaigns_seconds_per_1k_accounts": per_1k}
    exponents = {}
    for a, b in itertools.pairwise(results):
        ratio = math.log(b["accounts"] / a["accounts"])
        key = f"{a['accounts']}->{b['accounts']}"
        exponents[key] = {
            stage: round(math.log(max(b["seconds"][stage], 1e-3) / max(a["seconds"][stage], 1e-3)) / ratio, 2)
            for stage in ("find_campaigns", "profiles", "communities", "pair_tests_and_graph", "judge")
        }
        exponents[key]["peak_rss"] = round(math.log(b["peak_rss_mb"]["total"] / a["peak_rss_mb"]["total"]) / ratio, 2)
    if exponents:
        out["exponent_vs_accounts"] = exponents
        first, last = results[0], results[-1]
        k = math.log(last["seconds"]["find_campaigns"] / first["seconds"]["find_campaigns"]) / math.log(
            last["accounts"] / first["accounts"]
        )
        out["statement"] = (
            f"find_campaigns time grows as accounts^{k:.2f} from {first['accounts']} to {last['accounts']} accounts "
            f"(events in proportion): {per_1k[str(first['accounts'])]} s per 1k accounts at {first['accounts']}, "
            f"{per_1k[str(last['accounts'])]} s per 1k accounts at {last['accounts']}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--scales", type=str, default=None, help="comma-separated account counts, e.g. 10000,100000")
    parser.add_argument("--rules-only", action="store_true", help="judge campaigns without the learned model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results/clusters.json"))
    parser.add_argument("--inline", action="store_true", help="run in this process (for cProfile; RSS accumulates)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_scale(args.accounts, args.events, args.seed, args.rules_only)))
        return
    per_account = args.events / args.accounts
    sizes = [int(s) for s in args.scales.split(",")] if args.scales else [args.accounts]
    results = []
    for n in sizes:
        n_events = args.events if not args.scales else round(n * per_account)
        if args.inline:
            results.append(run_scale(n, n_events, args.seed, args.rules_only))
            continue
        command = [sys.executable, __file__, "--worker", "--accounts", str(n), "--events", str(n_events)]
        command += ["--seed", str(args.seed)] + (["--rules-only"] if args.rules_only else [])
        done = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "seed": args.seed,
        "target": {"accounts": 100_000, "events": 10_000_000, "seconds": 600},
        "scales": results,
        "growth": _growth(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")

    table = Table(title=f"campaign clustering ({results[0]['model']}); seconds per stage", show_lines=False)
    for column in (
        "accounts", "events", "gen 1 pass", "profiles", "blocking", "pair tests", "leiden", "judge", "total",
        "pairs", "links", "campaigns", "ARI", "camp. clustered", "benign flagged", "peak RSS MB",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        s, q = r["seconds"], r["quality"]
        table.add_row(
            f"{r['accounts']:,}",
            f"{r['events']:,}",
            f"{s['generator_one_pass']:.1f}",
            f"{s['profiles']:.1f}",
            f"{s['blocking']:.1f}",
            f"{s['pair_tests_and_graph']:.1f}",
            f"{s['leiden']:.1f}",
            f"{s['judge']:.1f}",
            f"{s['find_campaigns']:.1f}",
            f"{r['pairs_tested']:,}",
            f"{r['links']:,}",
            f"{r['campaigns']}",
            f"{q['ari']:.3f}",
            f"{q['campaign_accounts_clustered']:.1%}",
            f"{q['benign_accounts_flagged_by_cluster']:.3%}",
            f"{r['peak_rss_mb']['total']:,}",
        )
    console = Console(width=220)
    console.print(table)
    if "statement" in figures["growth"]:
        console.print(figures["growth"]["statement"])


if __name__ == "__main__":
    main()
