"""`distillguard demo`: the gateway in front of the mock upstream, with simulated customers, in under a minute.

Three populations call the gateway through the official openai SDK at once: a business app (steady, well under
its limits), an evaluation run (benchmark prompts, bursty) and a harvester (chain-of-thought elicitation at the
highest rate it can get, on a free-tier key). The table shows what the gateway did with each, live (detection's
verdict, the response applied and its reasons), and every call lands in the event log that detection reads.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import openai
from rich.console import Console
from rich.live import Live
from rich.table import Table

from distillguard.config import (
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


@dataclass
class Population:
    name: str
    account: str
    tier: str
    concurrency: int
    pause_s: float
    key: str = ""
    outcomes: Counter[str] = field(default_factory=Counter)
    tokens: int = 0


def harvest_prompt(rng: random.Random) -> str:
    """A chain-of-thought harvesting prompt: one template, broad and always new content."""
    domain = rng.choice(list(_HARVEST_TASKS))
    # Harvesters sweep broad, new content: every task is a fresh variant (a real one draws it from a dataset).
    task = f"{rng.choice(_HARVEST_TASKS[domain])}, case {rng.randrange(1_000_000)} with {rng.choice(_VARIANTS)}"
    return _HARVEST_TEMPLATE.format(domain=domain, task=task)


def _prompt(pop: Population, rng: random.Random) -> str:
    if pop.name == "harvester":
        return harvest_prompt(rng)
    return rng.choice(_BUSINESS if pop.name == "business app" else _EVAL)


async def _drive(pop: Population, base_url: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    # Customers' SDKs honour retry-after-ms on 429s; the harvester does not wait, it keeps pushing.
    retries = 0 if pop.name == "harvester" else 2
    client = openai.AsyncOpenAI(base_url=base_url, api_key=pop.key or "sk-not-a-key", max_retries=retries)

    async def worker() -> None:
        while time.monotonic() < until:
            try:
                reply = await client.chat.completions.create(
                    model="mock-reasoner" if pop.name == "harvester" else "mock-gpt",
                    messages=[{"role": "user", "content": _prompt(pop, rng)}],
                    max_tokens=256,
                )
                pop.outcomes["200 ok"] += 1
                pop.tokens += reply.usage.total_tokens if reply.usage else 0
                if pop.name == "harvester" and getattr(reply.choices[0].message, "reasoning_content", None) is None:
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
            await asyncio.sleep(pop.pause_s * (0.5 + rng.random()))

    workers = [asyncio.create_task(worker()) for _ in range(pop.concurrency)]
    # A call still waiting out a retry-after at the end is abandoned: the demo ends on time.
    _, late = await asyncio.wait(workers, timeout=max(0.0, until - time.monotonic()) + 0.5)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    await client.close()


def _table(populations: list[Population], gateway: Gateway, remaining: float) -> Table:
    table = Table(title=f"distillguard demo — traffic through the gateway ({max(0, remaining):.0f}s left)")
    columns = ("population", "tier", "200", "degraded", "429", "403", "401", "verdict", "response", "why")
    counted = ("200 ok", "degraded", "429 rate limited", "403 refused", "401 bad key")
    for column in columns:
        table.add_column(column, justify="right" if column[0].isdigit() or column == "degraded" else "left")
    responder = gateway.responder
    for pop in populations:
        score = gateway.detection.current(pop.account) if gateway.detection is not None else None
        verdict = f"{score.verdict} ({score.risk:.2f})" if score is not None else "-"
        why = ", ".join(r.signal for r in score.reasons if r.weight > 0) if score is not None else ""
        standing = responder.standings.get(pop.account) if responder is not None else None
        response = "-"
        if standing is not None and standing.level != "allow":
            response = standing.level + (f" (review: {standing.pending})" if standing.pending else "")
        table.add_row(
            pop.name,
            pop.tier,
            *(str(pop.outcomes[c]) for c in counted),
            verdict,
            response,
            why,
        )
    table.caption = f"events queued {gateway.sink.depth}, written {getattr(gateway.sink, 'written', 0)}"
    return table


async def run_demo(data_dir: Path, seconds: float, port: int, console: Console) -> list[Population]:
    settings = Settings(
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
    )
    gateway = Gateway(settings)
    populations = [
        Population("business app", "acme-support", "standard", concurrency=2, pause_s=0.25),
        Population("evaluation run", "evalco", "standard", concurrency=4, pause_s=0.05),
        Population("harvester", "free-trial-8812", "free", concurrency=4, pause_s=0.0),
        Population("stolen key", "unknown", "-", concurrency=1, pause_s=1.0),
    ]
    for pop in populations:
        if pop.name != "stolen key":
            gateway.store.upsert_account(pop.account, tier=pop.tier)
            pop.key = gateway.store.create_key(pop.account, "demo")[1]
    async with serving_in_process(gateway, port) as url:
        base_url = f"{url}/v1"
        until = time.monotonic() + seconds
        drivers = asyncio.gather(*(_drive(p, base_url, until, i) for i, p in enumerate(populations)))
        with Live(_table(populations, gateway, seconds), console=console, refresh_per_second=4) as live:
            while not drivers.done():
                live.update(_table(populations, gateway, until - time.monotonic()))
                await asyncio.sleep(0.25)
            live.update(_table(populations, gateway, 0))
        await drivers
    return populations


def demo(data_dir: Path, seconds: float, port: int) -> None:
    configure_logging("WARNING", "text")
    console = Console()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    console.print(
        "[bold]distillguard demo[/bold]: gateway + in-process mock upstream on "
        f"http://127.0.0.1:{port}/v1, data in {data_dir}/"
    )
    asyncio.run(run_demo(data_dir, seconds, port, console))
    console.print(
        f"\nEvery call above is an event in {data_dir}/events.db. Try:\n"
        f"  distillguard events export --data-dir {data_dir} --out events.jsonl\n"
        "The harvester was held to its free-tier limits, flagged by detection (its reasons in the last column),\n"
        "then throttled and degraded (reasoning traces withheld); blocking it waits for a reviewer, in the case\n"
        "that was opened. The business app and the evaluation run (benchmark items with 'think step by step')\n"
        "passed untouched. Review the case, and score a whole log the same way:\n"
        f"  distillguard review list --data-dir {data_dir}\n"
        f"  distillguard review show --data-dir {data_dir} <case_id>\n"
        f"  distillguard analyze --events events.jsonl --out verdicts.jsonl"
    )
