"""Per-request cost of online detection in the gateway: signals + account-state update + amortised rescoring.

    .venv/bin/python bench/online.py [--requests 20000] [--accounts 500] [--out bench/results/online.json]

Requests are realistic chat bodies (built-in samples: casual questions, CoT-wrapped harvesting, templated business
calls, benchmark items); each is timed through exactly what the gateway does per call. Rescoring runs in the
gateway's background task every 50 ms; here it runs every 256 calls and its cost is spread over those calls.
Target: p99 <= 200 microseconds per request.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distillguard.detect.model import RiskModel, shipped_model_available
from distillguard.detect.scorer import OnlineScorer
from distillguard.detect.signals import extract

TOPICS = ["photosynthesis", "quicksort", "contract law", "black holes", "inflation", "TCP", "vaccines", "opera"]
SHAPES: list[Callable[[random.Random], str]] = [
    lambda r: f"hey, what's a good book about {r.choice(TOPICS)}? something light please",
    lambda r: f"Think out loud and show every step of your reasoning: explain {r.choice(TOPICS)} ({r.random():.6f})",
    lambda r: (
        f"Classify this support ticket as billing, shipping or other: order {r.randrange(10**6)} arrived late "
        "and the box was damaged, I want a refund"
    ),
    lambda r: (
        "Question: A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total "
        "does it take?\nAnswer: Let's think step by step."
    ),
    lambda r: (
        "You are asked to come up with a set of 20 diverse task instructions. These task instructions will be "
        "given to a GPT model and we will evaluate the GPT model for completing the instructions. " * 3
    ),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench/results/online.json"))
    args = parser.parse_args()
    rng = random.Random(7)
    bodies = [
        {"model": "frontier-1", "messages": [{"role": "user", "content": rng.choice(SHAPES)(rng)}], "max_tokens": 512}
        for _ in range(2000)
    ]
    model = RiskModel.load() if shipped_model_available() else None
    scorer = OnlineScorer(model=model)
    per_call: list[float] = []
    flush_total = 0.0
    now = 1_793_000_000_000_000
    for i in range(args.requests):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        signals = extract(body, "/v1/chat/completions")
        scorer.observe(f"acct{i % args.accounts}", now + i * 1000, signals, 200, 40, 300, "frontier-1")
        per_call.append(time.perf_counter() - t0)
        if i % 256 == 255:
            t1 = time.perf_counter()
            scorer.flush()
            flush_total += time.perf_counter() - t1
    flush_per_call = flush_total / args.requests
    us = [x * 1e6 for x in per_call]
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "requests": args.requests,
        "accounts": args.accounts,
        "model": model.version if model is not None else "rules only",
        "per_call_us": {"p50": percentile(us, 0.5), "p99": percentile(us, 0.99), "mean": statistics.fmean(us)},
        "rescoring_us_per_call": flush_per_call * 1e6,
        "p99_with_rescoring_us": percentile(us, 0.99) + flush_per_call * 1e6,
        "target_p99_us": 200,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    table = Table("measure", "microseconds", title=f"online detection per request ({figures['model']})")
    table.add_row("signals + state update, p50", f"{figures['per_call_us']['p50']:.1f}")
    table.add_row("signals + state update, p99", f"{figures['per_call_us']['p99']:.1f}")
    table.add_row("rescoring, amortised per call", f"{flush_per_call * 1e6:.1f}")
    table.add_row("p99 + rescoring (target <= 200)", f"{figures['p99_with_rescoring_us']:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
