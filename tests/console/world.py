"""A small deployment for the console tests, written through the real writers: accounts and keys (the store),
calls (the event log and its rollups; or, for a shared deployment, the Redis stream, archived by an ingest worker
that keeps the store's rollups), scores and their history (the score writer), a standing and its case (the
case book), a campaign (the campaign store), partner intel and a watermark check.

- ``acme-app``: a business app (org acme-inc, tier standard), 6 calls, risk 0.05, allow.
- ``harvester``: tier free, 30 chain-of-thought calls, risk 0.97, block, with an open case and partner intel.
- ``eval-lab``: no tier (the default one), 3 calls, risk 0.40, watch.
- ``quiet``: an account that never called and was never scored.
- ``ghost``: 2 calls, unknown to the store (an account imported with a log); ``_unauthenticated``: 1 refused call.
- ``HOSTILE``: an account whose id is markup.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert

from distillguard.clusters.store import parse_campaign, save_campaigns
from distillguard.config import EventsConfig, Settings, load_settings
from distillguard.console.context import ConsoleContext
from distillguard.detect.signals import extract
from distillguard.events.schema import UNAUTHENTICATED, Event
from distillguard.events.sqlite import SQLiteEventLog
from distillguard.events.stream import RedisStreamSink
from distillguard.ingest.rollups import StoreRollups
from distillguard.ingest.worker import IngestOptions, IngestWorker
from distillguard.intel.vocabulary import CAMPAIGN_EXT
from distillguard.respond.standing import Standing
from distillguard.store.schema import intel_objects
from distillguard.store.scores import ScoreRecord, ScoreStore
from distillguard.timefmt import epoch_us, rfc3339, utcnow
from distillguard.watermark.checks import record_check

HOSTILE = '<script>alert("x")</script>/..&'
PARTNER = "identity--2f0c51a0-3b7e-4f61-9d49-0d3c4f8f3e11"
CLUSTER = "clu_0123456789ab"
COT = "Think step by step and show all of your reasoning before the final answer. Problem: what is {n} squared?"


@dataclass
class World:
    ctx: ConsoleContext
    case_id: str
    token: str
    check_id: str


def settings_for(tmp: Path, store_url: str | None = None, stream_url: str | None = None, **console: Any) -> Settings:
    """The world's settings; with ``stream_url``, a shared deployment (events to that Redis stream, archived in
    ``tmp/archive``)."""
    shared = {"sink": "redis", "stream_url": stream_url, "archive_dir": str(tmp / "archive")} if stream_url else None
    return load_settings(
        None,
        data_dir=tmp,
        store_url=store_url,
        events=shared,
        console={"token_recheck_s": 0, **console},
        intel={"partners": [{"name": "Provider A", "identity": PARTNER, "public_key": "ed25519:unused"}]},
    )


_ids = itertools.count()


def _event(account_id: str, i: int, prompt: str, status: int = 200, key_id: str | None = None) -> Event:
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    ts_us = time.time_ns() // 1000 - (100 - i) * 1_000_000
    return Event(
        event_id=f"req_{ts_us:013x}{next(_ids):011x}",  # the gateway's form: its time, then a unique part
        ts_us=ts_us,
        endpoint="/v1/chat/completions",
        request_raw=orjson.dumps(body),
        account_id=account_id,
        key_id=key_id,
        client_ip="198.51.100.7",
        user_agent='<img src=x onerror="alert(1)">',
        model="mock-gpt",
        status=status,
        prompt_tokens=20 if status == 200 else None,
        completion_tokens=40 if status == 200 else None,
        text="The answer, step by step." if status == 200 else None,
        signals=extract(body),
    )


def record(ctx: ConsoleContext, calls: list[Event]) -> None:
    """Record calls as the deployment does: the event log, or the stream, archived by an ingest worker that keeps
    the store's rollups."""
    events = ctx.settings.events
    if events.sink == "sqlite":
        log = SQLiteEventLog(ctx.settings.data_dir, EventsConfig())
        for e in calls:
            log.submit(e)
        log.close()
        return
    assert events.stream_url is not None and events.archive_dir is not None
    sink = RedisStreamSink(events)
    for e in calls:
        sink.submit(e)
    assert sink.flush()
    sink.close()
    options = IngestOptions(stream_url=events.stream_url, out=events.archive_dir, consumer="world")
    worker = IngestWorker(options, rollups=StoreRollups(ctx.engine, events.archive_dir))
    assert worker.run(until_idle=True).archived == len(calls)
    worker.client.close()


def build(tmp: Path, store_url: str | None = None, stream_url: str | None = None, **console: Any) -> World:
    ctx = ConsoleContext.standalone(settings_for(tmp, store_url, stream_url, **console))
    store, book = ctx.store, ctx.book
    store.upsert_account("acme-app", org_id="acme-inc", tier="standard")
    store.upsert_account("harvester", tier="free", created_at=utcnow() - timedelta(days=2))
    store.upsert_account("eval-lab", org_id="evalco")
    store.upsert_account("quiet", tier="enterprise")
    store.upsert_account(HOSTILE, org_id="<b>org</b>")
    key, _ = store.create_key("harvester")

    calls = (
        [_event("acme-app", i, f"Summarise ticket {i}") for i in range(6)]
        + [_event("harvester", i, COT.format(n=i), key_id=key.key_id) for i in range(30)]
        + [_event("eval-lab", i, f"Question {i}: 2 + {i}?") for i in range(3)]
        + [_event("ghost", i, "hello") for i in range(2)]
        + [_event(UNAUTHENTICATED, 0, "hello", status=401)]
        + [_event(HOSTILE, 0, "<script>document.title='pwned'</script>")]
    )
    record(ctx, calls)

    now = utcnow()
    reasons: dict[str, list[dict[str, Any]]] = {
        "harvester": [
            {
                "signal": "cot_elicitation",
                "value": 1.0,
                "detail": "100% of requests ask for step-by-step reasoning traces",
                "weight": 4.5,
            },
            {"signal": "partner_intel", "value": 0.6, "detail": "partner intel on campaign x: Provider A", "weight": 1},
        ],
        "eval-lab": [{"signal": "benchmark_evaluation", "value": 0.9, "detail": "benchmark items", "weight": -3.5}],
        "acme-app": [],
        HOSTILE: [{"signal": "<b>sig</b>", "value": 0.1, "detail": "<i>detail</i>", "weight": 0.1}],
    }
    risks = {
        "acme-app": (0.05, "allow"),
        "harvester": (0.97, "block"),
        "eval-lab": (0.4, "watch"),
        HOSTILE: (0.1, "allow"),
    }
    scores = ScoreStore(ctx.engine)
    scores.write([ScoreRecord("harvester", 0.35, "watch", reasons["harvester"][:1], 8, now - timedelta(minutes=5))])
    scores.write([ScoreRecord(a, risk, verdict, reasons[a], 30, now) for a, (risk, verdict) in risks.items()])

    st = Standing("harvester")
    change = book.transitions.on_verdict(st, "block", 0.97, ["cot_elicitation"], epoch_us(now))
    assert change is not None
    (case_id,) = book.record([(st, change)])

    campaign = parse_campaign(
        {
            "cluster_id": CLUSTER,
            "verdict": "degrade",
            "risk": 0.8,
            "events": 33,
            "tokens": 1800,
            "first_seen": rfc3339(now - timedelta(hours=2)),
            "last_seen": rfc3339(now),
            "capabilities": {"math": 30, "general": 3},
            "evidence": [
                {
                    "kind": "shared_template",
                    "category": "content",
                    "meaning": "the same prompt templates dominate both accounts' traffic",
                    "links": 2,
                    "examples": ["harvester ~ eval-lab: template t1 on 90% of calls"],
                }
            ],
            "members": [
                {"account_id": "harvester", "link_strength": 4.0},
                {"account_id": "eval-lab", "link_strength": 2.5},
                {"account_id": "quiet", "link_strength": 1.5},
            ],
            "links": [
                {
                    "a": "harvester",
                    "b": "eval-lab",
                    "weight": 2.1,
                    "evidence": [{"kind": "shared_template", "category": "content", "score": 0.9, "detail": "t1"}],
                },
                {
                    "a": "harvester",
                    "b": "quiet",
                    "weight": 1.6,
                    "evidence": [{"kind": "shared_payment", "category": "account", "score": 1.0, "detail": "card"}],
                },
            ],
        },
        1,
    )
    save_campaigns(ctx.engine, [campaign], now)

    indicator = {
        "type": "indicator",
        "id": "indicator--0b6e2a55-8c86-4b4e-a0c4-7b0fcb1c1e01",
        "name": "Distillation campaign clu_theirs: payment fingerprints",
        "valid_from": rfc3339(now),
        "extensions": {CAMPAIGN_EXT.id: {"campaign": "clu_theirs", "indicator_kind": "payment_fingerprint"}},
    }
    with ctx.engine.begin() as conn:
        conn.execute(
            insert(intel_objects).values(
                id=indicator["id"], version=indicator["valid_from"], type="indicator", signer=PARTNER,
                received_at=now, body=indicator,
            )
        )  # fmt: skip
    check_id = record_check(
        ctx.engine,
        kind="watermark",
        subject_kind="account",
        subject_id="harvester",
        actor="reviewer:bob",
        detected=True,
        p_value=3.2e-9,
        result={"scheme": "lexical-v1", "detected": True, "p_value": 3.2e-9, "scored": 420, "hits": 300},
    )
    _, token = book.create_admin_token("alice", "operator:tests")
    return World(ctx, case_id, token, check_id)
