"""A small synthetic world for the intel tests: one harvesting campaign among ordinary users, as events.

The campaign's 8 accounts share two payment fingerprints, one e-mail domain, a /24 of addresses and two prompt
templates that ask for step-by-step reasoning; ordinary users send their own prompts from elsewhere, and some of
them (and the campaign) also use one popular template, which must never be exported.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from distillguard.config import IntelConfig
from distillguard.detect.signals import extract
from distillguard.events.schema import Event
from distillguard.intel.member import Member, load_member
from distillguard.store.models import Account

GROUP_KEY = "6b" * 32
START_US = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1_000_000)
TEMPLATES = (
    "Think step by step and show all of your reasoning before the final answer.\nProblem: {q}",
    "You are a meticulous tutor. Explain your chain of thought in detail, then answer.\nQuestion: {q}",
)
POPULAR = "Translate into French:\n\n{q}"
QUESTIONS = [
    f"what is {a} times {b} plus the number of legs of a {animal}?"
    for a in range(3, 9)
    for b in range(4, 9)
    for animal in ("spider", "cat", "bird")
]
CAMPAIGN_ACCOUNTS = [f"acct_harvest_{i:02d}" for i in range(8)]
CARDS = ("card_fp_77aa19", "card_fp_03bb42")
CAMPAIGN_DOMAIN = "mailbox-bulk.example"
ORDINARY = [f"acct_user_{i:02d}" for i in range(12)]
ORDINARY_PROMPTS = [
    "can you help me write a polite email to my landlord about the heating",
    "what's a good name for a golden retriever puppy",
    "summarise the plot of Hamlet in three sentences",
    "how do I centre a div in CSS",
    "give me a packing list for a weekend of hiking",
    "explain what an index fund is",
    "suggest a vegetarian lasagna recipe for six people",
    "what should I see in Lisbon in two days",
    "rewrite this sentence to sound friendlier: please send the report",
    "why is the sky blue, simply",
    "draft a short toast for my brother's wedding",
    "what are good stretches after running",
]


def member(tmp: Path, name: str) -> Member:
    return load_member(IntelConfig(provider_name=name, group_key=GROUP_KEY), tmp / name.replace(" ", "_"))


def accounts() -> dict[str, Account]:
    out = {
        a: Account(a, org_id=f"org_h{i % 3}", payment_fingerprint=CARDS[i % 2], email_domain=CAMPAIGN_DOMAIN)
        for i, a in enumerate(CAMPAIGN_ACCOUNTS)
    }
    for i, a in enumerate(ORDINARY):
        out[a] = Account(a, org_id=f"org_u{i}", payment_fingerprint=f"card_user_{i}", email_domain="gmail.com")
    return out


def event(account_id: str, i: int, prompt: str, ip: str, ts_us: int | None = None) -> Event:
    body: dict[str, Any] = {"model": "m1", "messages": [{"role": "user", "content": prompt}]}
    return Event(
        event_id=f"req_{account_id}_{i}",
        ts_us=START_US + i * 1_000_000 if ts_us is None else ts_us,
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps(body),
        account_id=account_id,
        client_ip=ip,
        client_fingerprint="ho:sdkdefault",
        model="m1",
        status=200,
        signals=extract(body),
    )


def events(seed: int = 1) -> list[Event]:
    """The campaign sends in synchronised rounds a minute apart; ordinary users at their own pace over six hours."""
    rng = random.Random(seed)
    out: list[Event] = []
    n = 0
    for round_ in range(12):
        for j, a in enumerate(CAMPAIGN_ACCOUNTS):
            template = POPULAR if round_ == 0 else TEMPLATES[(round_ + j) % 2]
            ts = START_US + round_ * 60_000_000 + j * 1000
            out.append(event(a, n, template.format(q=rng.choice(QUESTIONS)), f"203.0.113.{10 + j}", ts))
            n += 1
    for j, a in enumerate(ORDINARY):
        for k, prompt in enumerate(rng.sample(ORDINARY_PROMPTS, 12)):
            text = POPULAR.format(q=prompt) if j < 4 and k == 0 else prompt
            ts = START_US + int(rng.uniform(0, 6 * 3600)) * 1_000_000
            out.append(event(a, n, text, f"198.51.{j}.7", ts))
            n += 1
    return sorted(out, key=lambda e: e.ts_us)


def campaign() -> dict[str, Any]:
    return {
        "cluster_id": "clu_test0001",
        "size": len(CAMPAIGN_ACCOUNTS),
        "verdict": "degrade",
        "risk": 0.8,
        "tokens": 123456,
        "capabilities": {"math": 90, "general": 6},
        "evidence": [{"kind": "shared_payment"}, {"kind": "shared_template"}],
        "members": [{"account_id": a, "link_strength": 4.0} for a in CAMPAIGN_ACCOUNTS],
    }
