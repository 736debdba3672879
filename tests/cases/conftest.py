"""A deployment with a caught campaign, written through the code paths that fill a real one: accounts in the store,
events through the SQLite event sink with their request signals (or, for a shared deployment, through the Redis
stream and an ingest worker that archives them and keeps the store's rollups), scores through the score writer,
the campaign through the campaign store, standings, cases, an appeal and the audit trail through the case book, and
a recorded watermark check."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.clusters.store import parse_campaigns, save_campaigns
from distillguard.config import Settings, load_settings
from distillguard.demo import harvest_prompt
from distillguard.detect.reasons import Reason
from distillguard.detect.signals import extract
from distillguard.events.schema import Event
from distillguard.events.sqlite import SQLiteEventLog
from distillguard.events.stream import RedisStreamSink
from distillguard.ingest.rollups import StoreRollups
from distillguard.ingest.worker import IngestOptions, IngestWorker
from distillguard.respond.book import CaseBook
from distillguard.store.scores import ScoreRecord, ScoreStore
from distillguard.store.state import StateStore, open_store
from distillguard.timefmt import epoch_us, rfc3339
from distillguard.watermark.checks import record_check

CLUSTER = "clu_0a1b2c3d4e5f"
HARVESTERS = ["harv-1", "harv-2", "harv-3"]
CUSTOMER = "acme-support"
HARVESTER_IP = "203.0.113.57"
CUSTOMER_IP = "198.51.100.23"
# Long answers: the default privacy rule cuts them to 500 characters.
ANSWER = "Step 1: restate the problem. " + "Then reason about every case carefully and check the result. " * 40
BUSINESS = "Summarise this support ticket in one line: customer cannot reset password after the update."
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Deployment:
    data_dir: Path
    settings: Settings
    store: StateStore
    book: CaseBook
    case_id: str
    check_id: str
    prompts: list[str]

    def reload(self, **overrides: Any) -> Settings:
        events = self.settings.events.model_dump(exclude_defaults=True) or None
        self.settings = load_settings(
            None, data_dir=self.data_dir, store_url=self.settings.store_url, events=events, **overrides
        )
        return self.settings


def _event(i: int, account: str, prompt: str, ip: str, at: datetime) -> Event:
    request = {"model": "mock-reasoner", "messages": [{"role": "user", "content": prompt}], "max_tokens": 800}
    if account != CUSTOMER:
        request |= {"logprobs": True, "top_logprobs": 5}
    return Event(
        event_id=f"evt_{i:06d}",
        ts_us=epoch_us(at),
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps(request),
        account_id=account,
        key_id=f"key-{account}",
        client_ip=ip,
        user_agent="python-httpx/0.28",
        model="mock-reasoner",
        status=200,
        prompt_tokens=60,
        completion_tokens=400,
        finish_reason="stop",
        text=ANSWER if account != CUSTOMER else "Customer cannot reset their password since the update.",
        text_sha256="ab" * 32,
        latency_ms=120.0,
        signals=extract(request),
    )


def _campaign_body() -> dict[str, Any]:
    pair = [("harv-1", "harv-2"), ("harv-2", "harv-3"), ("harv-1", "harv-3")]
    return {
        "cluster_id": CLUSTER,
        "size": 3,
        "risk": 0.91,
        "verdict": "degrade",
        "first_flagged_at": rfc3339(START + timedelta(hours=2)),
        "events": 180,
        "tokens": 180 * 460,
        "first_seen": rfc3339(START),
        "last_seen": rfc3339(START + timedelta(hours=6)),
        "capabilities": {"math": 120, "code": 60},
        "evidence": [
            {
                "kind": "payment",
                "category": "identity",
                "meaning": "the same payment instrument",
                "links": 3,
                "examples": ["harv-1 ~ harv-2: card fingerprint fp_77"],
            }
        ],
        "unavailable_evidence": {},
        "reasons": [Reason("cot_share", 0.9, "90% of calls ask for step-by-step reasoning", 1.4).to_json()],
        "members": [
            {"account_id": m, "link_strength": 4.0 + i, "verdict": "degrade"} for i, m in enumerate(HARVESTERS)
        ],
        "links": [
            {
                "a": a,
                "b": b,
                "weight": 2.5,
                "evidence": [
                    {"kind": "payment", "category": "identity", "score": 1.0, "detail": "card fingerprint fp_77"},
                    {"kind": "template", "category": "content", "score": 0.8, "detail": "same CoT template t_91"},
                ],
            }
            for a, b in pair
        ],
    }


def record(settings: Settings, store: StateStore, events: list[Event]) -> None:
    """The deployment's events, as its sink keeps them: the event log, or the stream and the archive."""
    if settings.events.sink == "sqlite":
        log = SQLiteEventLog(settings.data_dir, settings.events)
        for event in events:
            log.submit(event)
        log.close()
        return
    assert settings.events.stream_url is not None and settings.events.archive_dir is not None
    sink = RedisStreamSink(settings.events)
    for event in events:
        sink.submit(event)
    assert sink.flush()
    sink.close()
    options = IngestOptions(stream_url=settings.events.stream_url, out=settings.events.archive_dir, consumer="cases")
    worker = IngestWorker(options, rollups=StoreRollups(store.engine, settings.events.archive_dir))
    assert worker.run(until_idle=True).archived == len(events)
    worker.client.close()


def build(data_dir: Path, store_url: str | None = None, stream_url: str | None = None) -> Deployment:
    """The deployment; with ``stream_url`` a shared one (events to that Redis stream, archived in DIR/archive)."""
    shared = {"sink": "redis", "stream_url": stream_url, "archive_dir": str(data_dir / "archive")}
    settings = load_settings(None, data_dir=data_dir, store_url=store_url, events=shared if stream_url else None)
    store = open_store(data_dir, store_url, "deployment-secret")
    for account in HARVESTERS:
        store.upsert_account(account, org_id="shell-co", tier="free", payment_fingerprint="fp_77")
    store.upsert_account(CUSTOMER, org_id="acme", tier="enterprise", verified=True)
    rng = random.Random(7)
    events = []
    prompts = []
    for i in range(180):
        account = HARVESTERS[i % 3] if i % 4 else CUSTOMER
        prompt = harvest_prompt(rng) if account != CUSTOMER else BUSINESS
        prompts.append(prompt)
        ip = HARVESTER_IP if account != CUSTOMER else CUSTOMER_IP
        events.append(_event(i, account, prompt, ip, START + timedelta(minutes=2 * i)))
    record(settings, store, events)
    scores = ScoreStore(store.engine)
    for step, risk in enumerate((0.35, 0.62, 0.93)):
        at = START + timedelta(hours=2 * step + 1)
        verdict = "watch" if risk < 0.5 else "throttle" if risk < 0.7 else "block"
        reasons = [Reason("cot", risk, "asks for step-by-step reasoning on most calls", 1.1).to_json()]
        records = [ScoreRecord(m, risk, verdict, reasons, 20 * (step + 1), at) for m in HARVESTERS]
        records[0] = ScoreRecord(
            "harv-1",
            risk,
            verdict,
            [*reasons, Reason("partner_intel", 0.8, "template seen by partner ExampleAI", 0.6).to_json()],
            20 * (step + 1),
            at,
        )
        scores.write([*records, ScoreRecord(CUSTOMER, 0.05, "allow", [], 10 * (step + 1), at)])
    save_campaigns(store.engine, parse_campaigns([_campaign_body()]), START + timedelta(hours=6))
    book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
    case = book.open_campaign_case(CLUSTER, HARVESTERS, "degrade", 0.91, ["campaign of 3 accounts"], "system:clusters")
    book.appeal(case.case_id, "harv-2", "We are a university lab running an evaluation.", "lab@example.edu")
    check_id = record_check(
        store.engine,
        kind="watermark",
        subject_kind="campaign",
        subject_id=CLUSTER,
        actor="reviewer:ana",
        detected=True,
        p_value=3.2e-9,
        result={
            "scheme": "lexical-v1",
            "detected": True,
            "p_value": 3.2e-9,
            "alpha": 1e-6,
            "scored": 410,
            "hits": 290,
            "expected": 205.0,
            "key_id": "k_1",
            "keys_tried": 2,
        },
    )
    return Deployment(data_dir, settings, store, book, case.case_id, check_id, prompts)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = build(tmp_path / "dg")
    yield d
    d.store.close()


# Gateways for the end-to-end pack test (the fixture lives with the other end-to-end tests).
from tests.e2e.conftest import start_gateway  # noqa: E402, F401
