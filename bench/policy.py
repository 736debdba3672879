"""Per-call cost of the response policy in the gateway: the lookup every call makes, and the enforcement work a
flagged account's call adds (tighter limits, request degradation, response degradation).

    .venv/bin/python bench/policy.py [--calls 200000] [--accounts 100000] [--out bench/results/policy.json]

Standings for ``--accounts`` accounts are loaded (1% at each level from watch to block, the rest without one), then
every call is timed through exactly what the gateway does: ``Responder.decide`` for a random account, and for a
degraded account ``Enforcement.apply`` (request rewrite and re-validation) plus the response transform of a
non-streamed completion with a reasoning trace. Target: the lookup adds <= 50 microseconds p99 to a call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import orjson
from rich.console import Console
from rich.table import Table

from distillguard.config import Level, RespondConfig, Settings
from distillguard.events.schema import Event
from distillguard.gateway.auth import Principal
from distillguard.gateway.enforcement import Enforcement
from distillguard.gateway.validation import CHAT, parse_completion_request
from distillguard.limits import resolve_rules
from distillguard.respond.book import CaseBook
from distillguard.respond.degrade import ResponseDegrader
from distillguard.respond.responder import Responder
from distillguard.respond.standing import Standing
from distillguard.store import open_store
from distillguard.store.models import Account, ApiKey

BODY = {
    "model": "mock-reasoner",
    "messages": [{"role": "user", "content": "Think step by step: why is the sky blue? Show every step."}],
    "max_tokens": 4096,
    "logprobs": True,
    "top_logprobs": 5,
}
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Rayleigh scattering. " * 20,
                    "reasoning_content": "First, sunlight contains all wavelengths. " * 40,
                },
                "logprobs": {"content": [{"token": "R", "logprob": -0.1, "top_logprobs": []}] * 50},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 400},
    }
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(percentile(values, 0.5), 2),
        "p99_us": round(percentile(values, 0.99), 2),
        "p999_us": round(percentile(values, 0.999), 2),
        "mean_us": round(sum(values) / len(values), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "policy.json")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".run" / "policy")
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir)
    store = open_store(args.data_dir, secret="bench-only-secret")  # noqa: S106 - a throwaway store
    config = RespondConfig()
    book = CaseBook(store.engine, store.secret, config, dict(settings.detect.thresholds))
    responder = Responder(config, book, watch_scorer=False)
    levels: list[Level] = [lv for lv in get_args(Level) if lv != "allow"]
    rng = random.Random(1)
    accounts = []
    now = datetime.now(UTC)
    for i in range(args.accounts):
        account = Account(f"acct-{i}", org_id=f"org-{i % 5000}", created_at=now)
        accounts.append(account)
        bucket = i % 100
        if bucket < len(levels):
            responder.standings[account.account_id] = Standing(account.account_id, level=levels[bucket], case_id="c")
    enforcement = Enforcement(config, settings.server.max_tokens_cap)
    key = ApiKey("k", "acct-0", None, now, None)

    lookup: list[float] = []
    perf = time.perf_counter_ns
    for _ in range(args.calls):
        account = accounts[rng.randrange(len(accounts))]
        t0 = perf()
        responder.decide(account)
        lookup.append((perf() - t0) / 1000)

    degraded_account = accounts[levels.index("degrade")]
    principal = Principal(key, degraded_account, resolve_rules(settings.limits, "k", degraded_account))
    decision = responder.decide(degraded_account)
    raw = orjson.dumps(BODY)
    request_path: list[float] = []
    response_path: list[float] = []
    loop = asyncio.new_event_loop()
    for _ in range(min(args.calls, 50_000)):
        event = Event("e", 0, CHAT, raw)
        req = parse_completion_request(orjson.loads(raw), CHAT, settings.server.max_tokens_cap)
        t0 = perf()
        coro: Any = enforcement.apply(event, req, principal, decision)
        loop.run_until_complete(coro)
        request_path.append((perf() - t0) / 1000)
        degrader = ResponseDegrader(config.degrade, chat=True)
        t0 = perf()
        degrader.whole(ANSWER)
        response_path.append((perf() - t0) / 1000)
    loop.close()

    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "accounts": args.accounts,
        "calls": args.calls,
        "target_p99_us": 50,
        "lookup": summary(lookup),
        "degrade_request": summary(request_path),
        "degrade_response": summary(response_path),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    table = Table("what (per call)", "p50 µs", "p99 µs", "p99.9 µs", "mean µs", title="response policy cost")
    for name, label in (
        ("lookup", "policy lookup (every call)"),
        ("degrade_request", "degrade: request rewrite + limits (flagged)"),
        ("degrade_response", "degrade: response transform, 2 KB trace (flagged)"),
    ):
        s = results[name]
        assert isinstance(s, dict)
        table.add_row(label, f"{s['p50_us']:.1f}", f"{s['p99_us']:.1f}", f"{s['p999_us']:.1f}", f"{s['mean_us']:.1f}")
    Console().print(table)
    print(f"target: lookup p99 <= 50 us; measured {results['lookup']['p99_us']} us")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
