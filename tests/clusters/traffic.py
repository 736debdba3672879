"""Traffic written into a data directory the way the gateway writes it: a hydra campaign and ordinary customers."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta
from pathlib import Path

import orjson

from distillguard.config import EventsConfig
from distillguard.detect.signals import extract
from distillguard.events.schema import Event
from distillguard.events.sqlite import SQLiteEventLog
from distillguard.store import StateStore
from distillguard.timefmt import utcnow

SECOND = 1_000_000
TASKS = ["integrate x^2 sin x", "implement an LRU cache", "explain adverse possession", "explain the Krebs cycle"]


class Log:
    """Events written the way the gateway writes them (signals computed once, stored with the event)."""

    def __init__(self, data_dir: Path) -> None:
        self.sink = SQLiteEventLog(data_dir, EventsConfig())
        self.prefix = f"req_{secrets.token_hex(4)}"
        self.n = 0

    def call(self, account: str, ts_us: int, prompt: str, system: str | None = None) -> None:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": "mock-reasoner", "messages": messages, "max_tokens": 384}
        self.n += 1
        self.sink.submit(
            Event(
                f"{self.prefix}{self.n:08d}", ts_us, "/v1/chat/completions", orjson.dumps(body), account_id=account,
                client_ip="127.0.0.1", user_agent="AsyncOpenAI/Python 1.40", model="mock-reasoner", status=200,
                prompt_tokens=60, completion_tokens=300, signals=extract(body, "/v1/chat/completions"),
            )
        )  # fmt: skip

    def close(self) -> None:
        self.sink.close()


def hydra_prompt(rng: random.Random) -> str:
    return (
        "<think> Reason inside these tags through every step before answering. </think> Then give the final answer. "
        f"Task: {rng.choice(TASKS)}, item {rng.randrange(1_000_000)}"
    )


def enrol(store: StateStore, accounts: list[str], minutes_ago: int = 40) -> None:
    for i, account in enumerate(accounts):
        store.upsert_account(
            account,
            tier="free",
            created_at=utcnow() - timedelta(minutes=minutes_ago - 2 * i),
            payment_fingerprint="card-5c1f9e",
            email_domain="quickmail.example",
        )


def hydra_traffic(log: Log, accounts: list[str], start_us: int, rounds: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for r in range(rounds):
        for i, account in enumerate(accounts):
            log.call(
                account, start_us + r * 3 * SECOND + i * 1000, hydra_prompt(rng), "You are a careful expert tutor."
            )


def customers(log: Log, start_us: int, count: int = 12) -> None:
    """The rest of the traffic: people asking their own questions at their own times (what makes shared keys rare)."""
    rng = random.Random(5)
    for c in range(count):
        for _ in range(6):
            log.call(f"customer-{c}", start_us + rng.randrange(20 * 60 * SECOND), f"question {rng.randrange(10**6)}?")
