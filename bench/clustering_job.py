"""One run of the clustering job of `serve` over a real event log: its duration and peak memory.

    .venv/bin/python bench/clustering_job.py [--accounts 10000] [--events 1000000] [--out FILE]

Builds a data directory the way a gateway fills it (events.db written by the event log's own writer, signals
computed per call, accounts in state.db): ordinary customers asking their own questions at their own times over the
last 20 hours, and a hydra of 50 accounts (one card, one mail domain, signed up together, one system prompt and a
reasoning-harvest recipe, calling in sync). Then times ``run_once`` (the work of one interval: the window, the
campaigns, each member's own score, saving, cases) in a fresh interpreter, so that its peak RSS is its own, and
checks that the hydra was caught. Figures go to bench/results/clustering_job.json; bench/clusters.py measures the
clustering itself at larger scales.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson

from distillguard.config import EventsConfig
from distillguard.detect.signals import extract
from distillguard.events.schema import Event
from distillguard.events.sqlite import SQLiteEventLog
from distillguard.store import open_store
from distillguard.timefmt import epoch_us, utcnow

HOUR = 3_600_000_000
HYDRA = 50
TOPICS = ["photosynthesis", "quicksort", "contract law", "black holes", "inflation", "TCP", "vaccines", "opera",
          "tax policy", "glaciers", "enzymes", "bond yields", "sonnets", "plate tectonics"]  # fmt: skip


def build(data_dir: Path, accounts: int, events: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    store = open_store(data_dir)
    now = utcnow()
    for i in range(HYDRA):
        store.upsert_account(
            f"hydra-{i}", tier="free", created_at=now - timedelta(hours=21, minutes=-i),
            payment_fingerprint="card-hydra", email_domain="quickmail.example",
        )  # fmt: skip
    log = SQLiteEventLog(data_dir, EventsConfig(batch_size=2000, queue_max=10_000_000))
    start = epoch_us(now) - 20 * HOUR
    hydra_calls = HYDRA * 40
    n = 0

    def call(account: str, ts: int, messages: list[dict[str, str]], ip: str) -> None:
        nonlocal n
        n += 1
        body = {"model": "m", "messages": messages, "max_tokens": 384}
        log.submit(
            Event(
                f"req_{n:012d}", ts, "/v1/chat/completions", orjson.dumps(body), account_id=account, client_ip=ip,
                user_agent="OpenAI/Python 1.40", model="m", status=200, prompt_tokens=50, completion_tokens=300,
                signals=extract(body, "/v1/chat/completions"),
            )
        )  # fmt: skip
        if n % 20_000 == 0:
            log.flush()

    for pulse in range(40):
        ts = start + pulse * HOUR // 2
        for i in range(HYDRA):
            prompt = (
                "<think> Reason inside these tags through every step before answering. </think> Then give the "
                f"final answer. Task: explain {rng.choice(TOPICS)}, item {pulse * HYDRA + i}"
            )
            messages = [
                {"role": "system", "content": "You are a careful expert tutor."},
                {"role": "user", "content": prompt},
            ]
            call(f"hydra-{i}", ts + rng.randrange(5_000_000), messages, f"198.51.100.{rng.randrange(40)}")
    for _ in range(events - hydra_calls):
        c = rng.randrange(accounts)
        prompt = f"customer {c} asks about {rng.choice(TOPICS)} ({rng.randrange(10**9)})"
        call(
            f"customer-{c}",
            start + rng.randrange(20 * HOUR),
            [{"role": "user", "content": prompt}],
            f"203.0.{c % 250}.{c % 199}",
        )
    log.close()


def measure(data_dir: Path) -> dict[str, object]:
    """``run_once`` in this interpreter; prints its summary and peak RSS as JSON."""
    from distillguard.clusters.run import run_once
    from distillguard.config import Settings

    started = time.perf_counter()
    summary = run_once(Settings(data_dir=data_dir), epoch_us(utcnow()))
    return {
        **summary.to_json(),
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=Path("bench/.run/clustering_job"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/clustering_job.json"))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.data_dir)))
        return
    if args.data_dir.exists():
        import shutil

        shutil.rmtree(args.data_dir)
    started = time.perf_counter()
    build(args.data_dir, args.accounts, args.events)
    built_s = time.perf_counter() - started
    run = subprocess.run(
        [sys.executable, __file__, "--measure", "--data-dir", str(args.data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(run.stdout.strip().splitlines()[-1])
    with open_store(args.data_dir).engine.connect() as conn:
        from sqlalchemy import select

        from distillguard.store.schema import campaign_members, campaigns

        members = {a for (a,) in conn.execute(select(campaign_members.c.account_id))}
        verdicts = [v for (v,) in conn.execute(select(campaigns.c.verdict))]
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "accounts": args.accounts,
        "events": args.events,
        "build_s": round(built_s, 1),
        "run": result,
        "campaign_verdicts": verdicts,
        "hydra_members_caught": len({m for m in members if m.startswith("hydra-")}),
        "customers_in_campaigns": len({m for m in members if m.startswith("customer-")}),
    }
    print(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
