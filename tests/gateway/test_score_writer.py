"""The gateway's score writer: coalesced per account, written off the loop, and a store failure never breaks the
gateway (its calls keep being served; the scores wait and are written once the store answers again)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select, text

from distillguard.detect.reasons import Reason
from distillguard.detect.scorer import Score
from distillguard.detect.verdicts import Verdict
from distillguard.gateway.app import Gateway, build_app
from distillguard.gateway.scores import ScoreWriter
from distillguard.store import open_store
from distillguard.store.schema import score_history, scores

T0_US = 1_790_000_000_000_000
BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def score(account: str, risk: float, verdict: Verdict, at_us: int, events: int = 8) -> Score:
    reasons = [Reason("cot_elicitation", 0.9, "asks for its reasoning", 1.2)]
    return Score(account, risk, verdict, reasons, risk, None, at_us, events)


def stored(engine: Engine) -> dict[str, tuple[float, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(scores.c.account_id, scores.c.risk, scores.c.verdict, scores.c.calls))
        return {a: (r, v, c) for a, r, v, c in rows}


def history_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(score_history.c.id)).all())


def drop_scores(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE scores"))


async def test_rounds_are_coalesced_to_the_newest_score_per_account(tmp_path: Path) -> None:
    engine = open_store(tmp_path).engine
    writer = ScoreWriter(engine)
    writer.offer([score("a", 0.2, "allow", T0_US), score("b", 0.4, "watch", T0_US)])
    writer.offer([score("a", 0.6, "throttle", T0_US + 1_000, events=16)])
    assert writer.pending == 2
    await writer.write_pending()
    assert stored(engine) == {"a": (0.6, "throttle", 16), "b": (0.4, "watch", 8)}
    # Only the newest of a's two scores was written: one history row per account.
    assert history_rows(engine) == 2 and writer.written == 2 and writer.pending == 0


async def test_a_failed_write_is_counted_and_kept_unless_a_newer_score_replaces_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_store(tmp_path).engine
    writer = ScoreWriter(engine)
    drop_scores(engine)
    writer.offer([score("a", 0.5, "throttle", T0_US), score("b", 0.3, "watch", T0_US)])
    with caplog.at_level(logging.ERROR):
        await writer.write_pending()
        await writer.write_pending()
    assert writer.failures == 2 and writer.pending == 2
    # Logged once per outage, not once per attempt.
    assert sum("writing scores failed" in r.getMessage() for r in caplog.records) == 1
    writer.offer([score("a", 0.9, "block", T0_US + 5)])
    scores.create(engine)
    await writer.write_pending()
    assert stored(engine) == {"a": (0.9, "block", 8), "b": (0.3, "watch", 8)}


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_the_gateway_serves_through_a_store_failure_and_writes_scores_after(
    gateway: tuple[Gateway, str],
) -> None:
    gw, key = gateway
    assert gw.detection is not None and gw.detection.scores is not None
    writer = gw.detection.scores
    writer.interval_s = 0.05
    engine = gw.store.engine
    drop_scores(engine)
    transport = httpx.ASGITransport(app=build_app(gw))
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as client:
        for _ in range(20):
            assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        await wait_for(lambda: writer.failures > 0)
        assert "distillguard_scores_write_failures_total" in (await client.get("/metrics")).text
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        scores.create(engine)
        await wait_for(lambda: "acct" in stored(engine))
        newest = gw.detection.current("acct")
        assert newest is not None and stored(engine)["acct"] == (round(newest.risk, 6), newest.verdict, newest.events)
