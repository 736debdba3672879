"""`distillguard demo`: the gateway in front of the mock upstream, with simulated customers, in under a minute.

Populations call the gateway through the official openai SDK at once: a business app (steady, well under its
limits), an evaluation run (benchmark prompts, bursty), a harvester (chain-of-thought elicitation at the highest
rate it can get, on a free-tier key), a stolen key, and a hydra: five free-trial accounts of one operator (signed
up together with one card and one mail domain, one system prompt and one reasoning-harvest recipe) calling in
sync, each making too few calls for its own reasons to count. The table shows what the gateway did with each, live
(detection's verdict, the response applied and its reasons); the clustering job links the hydra's accounts into a
campaign and opens one case for all of them, and the console (served by the same gateway, its URL and an admin
token printed first) shows it all as it happens.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import time
import webbrowser
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, select

from distillguard.config import (
    ClustersConfig,
    EventsConfig,
    LimitsConfig,
    LimitSet,
    RespondConfig,
    ServerConfig,
    Settings,
    ThrottleConfig,
    TierLimits,
    UpstreamConfig,
)
from distillguard.gateway.app import MOCK_UPSTREAM, Gateway
from distillguard.gateway.server import serving_in_process
from distillguard.logs import configure_logging
from distillguard.respond.book import OPEN_STATUSES
from distillguard.respond.policy import RANK
from distillguard.store.schema import campaigns, cases
from distillguard.timefmt import utcnow

_BUSINESS = [
    "Summarise this support ticket in one sentence: my invoice shows two charges for March.",
    "Translate to German: your order has shipped and will arrive on Tuesday.",
    "Classify the sentiment of: the new dashboard is slow but the export works well.",
    "Draft a polite reply to a customer asking to change their delivery address.",
]
# Items of the GSM8K test set (MIT licence), asked the way evaluation harnesses ask them.
_EVAL = [
    "Question: Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
    "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
    "egg. How much in dollars does she make every day at the farmers' market?\nAnswer: Let's think step by step.",
    "Question: A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it "
    "take?\nAnswer: Let's think step by step.",
    "Question: Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in "
    "repairs.  This increased the value of the house by 150%.  How much profit did he make?\nAnswer: Let's think "
    "step by step.",
]
_HARVEST_TEMPLATE = (
    "Solve the following {domain} problem. Think out loud and show every step of your reasoning before the final "
    "answer, then restate the full chain of thought: {task}"
)
# The hydra's own recipe (reasoning in <think> tags, its own max_tokens) and system prompt: nothing in common with
# the lone harvester's, so the two are not one campaign.
_HYDRA_TEMPLATE = (
    "<think> Reason inside these tags through every step before answering. </think> Then give the final answer. "
    "Topic: {domain}. Task: {task}"
)
_HYDRA_SYSTEM = "You are a careful expert tutor. Never skip a step."
_VARIANTS = [
    "edge cases",
    "a worked example",
    "a counter-example",
    "real-world data",
    "historical context",
    "formal definitions",
    "a proof sketch",
    "common mistakes",
    "an analogy",
    "numerical values",
]
_HARVEST_TASKS = {
    "math": ["integrate x^2 sin x", "prove there are infinitely many primes", "solve 3x + 7 = 22"],
    "code": ["implement an LRU cache", "reverse a linked list in place", "parse a CSV line with quotes"],
    "law": ["explain adverse possession", "compare civil and common law", "define consideration in contracts"],
    "biology": ["explain the Krebs cycle", "how do mRNA vaccines work", "what limits enzyme speed"],
}


# How often the demo's clustering job runs: every few seconds (the default is every five minutes).
CLUSTER_EVERY_S = 5.0
# Calls each hydra account makes in the whole demo: under the 8 calls at which the gateway rescores an account
# (it is scored at its first two), and too few for its own chain-of-thought share to count.
HYDRA_PULSES = 7


@dataclass
class Population:
    name: str
    accounts: list[str]
    tier: str
    concurrency: int
    pause_s: float
    # Account metadata: how long ago it signed up, its payment fingerprint and e-mail domain.
    age: timedelta = timedelta(days=300)
    payment: str | None = None
    email_domain: str | None = None
    keys: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    tokens: int = 0

    @property
    def hydra(self) -> bool:
        return len(self.accounts) > 1


def populations(seconds: float) -> list[Population]:
    return [
        Population(
            "business app", ["acme-support"], "standard", concurrency=2, pause_s=0.25, email_domain="acme.example"
        ),
        Population("evaluation run", ["evalco"], "standard", concurrency=4, pause_s=0.05, age=timedelta(days=90)),
        Population("harvester", ["free-trial-8812"], "free", concurrency=4, pause_s=0.0, age=timedelta(days=2)),
        Population(
            "hydra (5 accounts)",
            [f"trial-{4401 + i}" for i in range(5)],
            "free",
            concurrency=1,
            pause_s=seconds / HYDRA_PULSES,
            age=timedelta(minutes=45),
            payment="card-5c1f9e",
            email_domain="quickmail.example",
        ),
        Population("stolen key", ["unknown"], "-", concurrency=1, pause_s=1.0),
    ]


def harvest_prompt(rng: random.Random) -> str:
    """A chain-of-thought harvesting prompt: one template, broad and always new content."""
    domain = rng.choice(list(_HARVEST_TASKS))
    # Harvesters sweep broad, new content: every task is a fresh variant (a real one draws it from a dataset).
    task = f"{rng.choice(_HARVEST_TASKS[domain])}, case {rng.randrange(1_000_000)} with {rng.choice(_VARIANTS)}"
    return _HARVEST_TEMPLATE.format(domain=domain, task=task)


def hydra_prompt(rng: random.Random) -> str:
    """The hydra's recipe: the same sweep of broad, new content, under its own reasoning wrapper."""
    domain = rng.choice(list(_HARVEST_TASKS))
    task = f"{rng.choice(_HARVEST_TASKS[domain])}, item {rng.randrange(1_000_000)} with {rng.choice(_VARIANTS)}"
    return _HYDRA_TEMPLATE.format(domain=domain, task=task)


def _request(pop: Population, rng: random.Random) -> dict[str, Any]:
    if pop.hydra:
        messages = [{"role": "system", "content": _HYDRA_SYSTEM}, {"role": "user", "content": hydra_prompt(rng)}]
        return {"model": "mock-reasoner", "messages": messages, "max_tokens": 384}
    if pop.name == "harvester":
        prompt, model = harvest_prompt(rng), "mock-reasoner"
    else:
        prompt, model = rng.choice(_BUSINESS if pop.name == "business app" else _EVAL), "mock-gpt"
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 256}


async def _call(pop: Population, client: openai.AsyncOpenAI, rng: random.Random) -> None:
    try:
        reply = await client.chat.completions.create(**_request(pop, rng))
        pop.outcomes["200 ok"] += 1
        pop.tokens += reply.usage.total_tokens if reply.usage else 0
        if reply.model == "mock-reasoner" and getattr(reply.choices[0].message, "reasoning_content", None) is None:
            pop.outcomes["degraded"] += 1  # the reasoning model's trace was withheld
    except openai.RateLimitError:
        pop.outcomes["429 rate limited"] += 1
        await asyncio.sleep(0.1)
    except openai.PermissionDeniedError:
        pop.outcomes["403 refused"] += 1
    except openai.AuthenticationError:
        pop.outcomes["401 bad key"] += 1
    except openai.APIError as exc:
        pop.outcomes[f"error {type(exc).__name__}"] += 1


async def _drive(pop: Population, base_url: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    # Customers' SDKs honour retry-after-ms on 429s; the harvesters do not wait, they keep pushing.
    retries = 0 if pop.name == "harvester" or pop.hydra else 2
    clients = [
        openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=retries) for key in pop.keys or ["sk-not-a-key"]
    ]

    async def worker() -> None:
        while time.monotonic() < until:
            await _call(pop, clients[0], rng)
            await asyncio.sleep(pop.pause_s * (0.5 + rng.random()))

    async def pulses() -> None:
        # The operator's scheduler: every account calls at the same moment, then all wait for the next pulse.
        while time.monotonic() < until:
            await asyncio.gather(*(_call(pop, client, rng) for client in clients))
            await asyncio.sleep(pop.pause_s)

    workers = [asyncio.create_task(pulses() if pop.hydra else worker()) for _ in range(pop.concurrency)]
    # A call still waiting out a retry-after at the end is abandoned: the demo ends on time.
    _, late = await asyncio.wait(workers, timeout=max(0.0, until - time.monotonic()) + 0.5)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    for client in clients:
        await client.close()


@dataclass(frozen=True)
class CaughtCampaign:
    """A campaign the clustering job stored, with its case if it has one."""

    cluster_id: str
    members: list[str]
    verdict: str
    risk: float | None
    events: int
    evidence: list[str]
    case_id: str | None
    proposed: str | None
    applied: str | None

    def line(self) -> str:
        risk = "" if self.risk is None else f" ({self.risk:.2f})"
        case = (
            "no case"
            if self.case_id is None
            else f"case {self.case_id} (proposes {self.proposed}, applied {self.applied})"
        )
        return (
            f"campaign {self.cluster_id}: {len(self.members)} accounts, {self.events} calls together, verdict "
            f"{self.verdict}{risk}; linked by {', '.join(self.evidence[:5])}; {case}"
        )


def caught_campaigns(engine: Engine) -> list[CaughtCampaign]:
    """The flagged campaigns in the store, riskiest first, each with its newest open case."""
    flagged = [v for v, rank in RANK.items() if rank >= RANK["throttle"]]
    with engine.connect() as conn:
        rows = conn.execute(
            select(campaigns.c.cluster_id, campaigns.c.verdict, campaigns.c.risk, campaigns.c.events, campaigns.c.body)
            .where(campaigns.c.verdict.in_(flagged))
            .order_by(campaigns.c.risk.desc())
        ).all()
        open_cases = {
            r.subject_id: r
            for r in conn.execute(
                select(cases.c.case_id, cases.c.subject_id, cases.c.proposed, cases.c.applied)
                .where(cases.c.subject_kind == "campaign", cases.c.status.in_(OPEN_STATUSES))
                .order_by(cases.c.opened_at)
            )
        }
    found = []
    for cluster_id, verdict, risk, events, body in rows:
        case = open_cases.get(cluster_id)
        found.append(
            CaughtCampaign(
                cluster_id,
                [m["account_id"] for m in body["members"]],
                verdict,
                risk,
                events,
                [e["kind"] for e in body["evidence"]],
                case.case_id if case else None,
                case.proposed if case else None,
                case.applied if case else None,
            )
        )
    return found


def _table(populations: list[Population], gateway: Gateway, remaining: float, caught: list[CaughtCampaign]) -> Group:
    table = Table(title=f"distillguard demo — traffic through the gateway ({max(0, remaining):.0f}s left)")
    columns = ("population", "tier", "200", "degraded", "429", "403", "401", "verdict", "response", "why")
    counted = ("200 ok", "degraded", "429 rate limited", "403 refused", "401 bad key")
    for column in columns:
        table.add_column(column, justify="right" if column[0].isdigit() or column == "degraded" else "left")
    for pop in populations:
        table.add_row(pop.name, pop.tier, *(str(pop.outcomes[c]) for c in counted), *_standing(pop, gateway))
    table.caption = f"events queued {gateway.sink.depth}, written {getattr(gateway.sink, 'written', 0)}"
    job = gateway.clustering
    if job is None:
        return Group(table)
    runs = f"campaign clustering every {job.interval_s:.0f}s: {job.runs} runs"
    lines = [f"[bold red]{escape(c.line())}[/bold red]" for c in caught] or ["no campaign caught yet"]
    return Group(table, runs, *lines)


def _standing(pop: Population, gateway: Gateway) -> tuple[str, str, str]:
    """The strongest of the population's accounts: detection's verdict, the response applied, and the reasons."""
    scores = [s for a in pop.accounts if gateway.detection is not None and (s := gateway.detection.current(a))]
    verdict, why = "-", ""
    if scores:
        top = max(scores, key=lambda s: s.risk)
        verdict = f"{top.verdict} ({top.risk:.2f})" + (f" x{len(scores)}" if pop.hydra else "")
        why = ", ".join(dict.fromkeys(r.signal for s in scores for r in s.reasons if r.weight > 0))
    response = "-"
    responder = gateway.responder
    if responder is not None:
        standings = [st for a in pop.accounts if (st := responder.standings.get(a)) and st.level != "allow"]
        if standings:
            st = max(standings, key=lambda st: RANK[st.level])
            response = st.level + (f" (review: {st.pending})" if st.pending else "")
            response += " campaign" if st.campaign else ""
    return verdict, response, why


def settings_for(data_dir: Path, port: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        server=ServerConfig(port=port),
        upstreams=[UpstreamConfig(name="mock", base_url=MOCK_UPSTREAM)],
        limits=LimitsConfig(
            default_tier="standard",
            tiers={
                # Per second, so that the harvester keeps getting some calls through all along the demo.
                "free": TierLimits(account=LimitSet(requests=["3/second"], tokens=["60000/minute"])),
                "standard": TierLimits(account=LimitSet(requests=["600/minute"], tokens=["400000/minute"])),
            },
        ),
        events=EventsConfig(flush_interval_ms=100),
        # Throttled accounts get 30 calls a minute here (10 by default), so degraded answers show within the demo.
        respond=RespondConfig(throttle=ThrottleConfig(requests=["30/minute"], tokens=["100000/minute"])),
        # niceness 0: the hydra must be caught within the run, however busy the machine is otherwise.
        clusters=ClustersConfig(interval_s=CLUSTER_EVERY_S, lookback_h=1, niceness=0),
    )


def display_available() -> bool:
    """Whether a browser opened here would be seen by someone (not over SSH without X forwarding, not in CI)."""
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _enrol(gateway: Gateway, pops: list[Population]) -> None:
    now = utcnow()
    for pop in pops:
        if pop.name == "stolen key":
            continue
        for i, account in enumerate(pop.accounts):
            gateway.store.upsert_account(
                account,
                tier=pop.tier,
                # The hydra's accounts signed up a couple of minutes apart.
                created_at=now - pop.age + timedelta(minutes=2 * i),
                payment_fingerprint=pop.payment,
                email_domain=pop.email_domain,
            )
            pop.keys.append(gateway.store.create_key(account, "demo")[1])


async def run_demo(
    data_dir: Path,
    seconds: float,
    port: int,
    console: Console,
    keep_serving: bool = False,
    open_browser: bool = False,
) -> list[Population]:
    """The demo: traffic for ``seconds``, a last clustering pass over all of it, then (``keep_serving``) the gateway
    and its console until Ctrl-C."""
    gateway = Gateway(settings_for(data_dir, port))
    pops = populations(seconds)
    _enrol(gateway, pops)
    assert gateway.book is not None
    _, token = gateway.book.create_admin_token("demo analyst", "operator:demo")
    async with serving_in_process(gateway, port) as url:
        console_url = f"{url}{gateway.settings.console.path}/"
        # Plain lines, never wrapped: the token must survive a copy from a narrow terminal.
        console.rule("[bold]distillguard console[/bold]")
        console.print(f"  Console:      [bold]{console_url}[/bold]", soft_wrap=True)
        console.print(f"  Admin token:  [bold]{token}[/bold]", soft_wrap=True)
        console.print("  (paste it on the login page; it is shown once, only its keyed hash is stored)", soft_wrap=True)
        console.rule()
        if open_browser:
            webbrowser.open(console_url)
        job = gateway.clustering
        if job is not None and job.runner:
            job.worker.ready()  # its imports take a few seconds: start them now, not at the first run
        await _traffic(pops, gateway, f"{url}/v1", seconds, console)
        if keep_serving:
            console.print(f"\nServing the gateway and its console at {console_url} until Ctrl-C.")
            await asyncio.Event().wait()
    return pops


async def _traffic(pops: list[Population], gateway: Gateway, base_url: str, seconds: float, console: Console) -> None:
    """Drive every population for ``seconds`` with the table live; then one clustering pass over all the traffic."""
    until = time.monotonic() + seconds
    drivers = asyncio.gather(*(_drive(p, base_url, until, i) for i, p in enumerate(pops)))
    job, engine = gateway.clustering, gateway.store.engine
    caught: list[CaughtCampaign] = []
    runs = 0
    with Live(_table(pops, gateway, seconds, caught), console=console, refresh_per_second=4) as live:
        while not drivers.done():
            if job is not None and job.runs != runs:
                runs = job.runs
                caught = await asyncio.to_thread(caught_campaigns, engine)
            live.update(_table(pops, gateway, until - time.monotonic(), caught))
            await asyncio.sleep(0.25)
        await drivers
        if job is not None:
            # The last calls reach the event log within its flush interval; then cluster everything once more.
            await asyncio.sleep(3 * gateway.settings.events.flush_interval_ms / 1000)
            await job.run_once()
            caught = await asyncio.to_thread(caught_campaigns, engine)
        live.update(_table(pops, gateway, 0, caught))


def demo(data_dir: Path, seconds: float, port: int, keep_serving: bool | None = None) -> None:
    configure_logging("WARNING", "text")
    console = Console()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    console.print(
        "[bold]distillguard demo[/bold]: gateway + in-process mock upstream on "
        f"http://127.0.0.1:{port}/v1, data in {data_dir}/"
    )
    serve_on = sys.stdin.isatty() if keep_serving is None else keep_serving
    try:
        asyncio.run(run_demo(data_dir, seconds, port, console, serve_on, serve_on and display_available()))
    except KeyboardInterrupt:
        console.print("stopped")
        return
    console.print(
        f"\nEvery call above is an event in {data_dir}/events.db. Try:\n"
        f"  distillguard events export --data-dir {data_dir} --out events.jsonl\n"
        "The harvester was held to its free-tier limits, flagged by detection (its reasons in the last column),\n"
        "then throttled and degraded (reasoning traces withheld); blocking it waits for a reviewer, in the case\n"
        "that was opened. The hydra's five accounts each made a handful of calls, too few to flag alone; the\n"
        "clustering job linked them (one card, one mail domain, signed up together, one system prompt and recipe)\n"
        "and opened one case for the whole campaign. The business app and the evaluation run (benchmark items\n"
        "with 'think step by step') passed untouched. Review the cases (or run `make demo` at a terminal and use\n"
        "the console), and score a whole log the same way:\n"
        f"  distillguard review list --data-dir {data_dir}\n"
        f"  distillguard review show --data-dir {data_dir} <case_id>\n"
        f"  distillguard analyze --events events.jsonl --out verdicts.jsonl"
    )
