"""Fail modes: when the scorer or the response store is unavailable, the configured choice applies, and the
metrics and logs say so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
from sqlalchemy.exc import OperationalError

from distillguard.config import EventsConfig, RespondConfig, Settings, UpstreamConfig
from distillguard.gateway import exchange
from distillguard.gateway.app import Gateway, build_app
from distillguard.mock_upstream.server import running_mock
from distillguard.respond.responder import Verdict

BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
Client = tuple[Gateway, httpx.AsyncClient]
Start = Callable[[Literal["open", "closed"]], contextlib.AbstractAsyncContextManager[Client]]


@pytest.fixture
def start(tmp_path: Path) -> Start:
    @contextlib.asynccontextmanager
    async def make(fail_mode: Literal["open", "closed"]) -> AsyncIterator[Client]:
        async with running_mock() as base_url:
            gw = Gateway(
                Settings(
                    data_dir=tmp_path,
                    upstreams=[UpstreamConfig(base_url=base_url)],
                    events=EventsConfig(flush_interval_ms=10),
                    respond=RespondConfig(fail_mode=fail_mode, scorer_stale_s=0.3, sync_interval_s=0.05),
                )
            )
            gw.store.upsert_account("acct")
            _, key = gw.store.create_key("acct")
            await gw.startup()
            transport = httpx.ASGITransport(app=build_app(gw))
            headers = {"authorization": f"Bearer {key}"}
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as c:
                    yield gw, c
            finally:
                await gw.shutdown()

    return make


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name))
    return float(line.rsplit(" ", 1)[1])


async def test_a_failing_scorer_fails_closed_and_recovers(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with start("closed") as (gw, client):
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        detection, responder = gw.detection, gw.responder
        assert detection is not None and responder is not None
        original = detection.scorer.take

        def broken() -> Any:
            raise RuntimeError("model server gone")

        detection.scorer.take = broken  # type: ignore[method-assign]
        await wait_for(lambda: not responder.available)
        refused = await client.post("/v1/chat/completions", json=BODY)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "enforcement_unavailable"
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, 'distillguard_response_available{component="scorer"}') == 0.0
        assert metric(metrics, 'distillguard_fail_mode_calls_total{mode="closed"}') == 1.0
        assert any("scorer" in r.getMessage() or "response unavailable" in r.getMessage() for r in caplog.records)
        detection.scorer.take = original  # type: ignore[method-assign]
        await wait_for(lambda: responder.available)
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200


async def test_an_unavailable_store_fails_open_and_loses_no_moves(start: Start) -> None:
    async with start("open") as (gw, client):
        responder, book = gw.responder, gw.book
        assert responder is not None and book is not None
        original = book.record

        def down(*_args: Any, **_kw: Any) -> Any:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

        book.record = down  # type: ignore[method-assign]

        responder.on_verdicts([Verdict("acct", "throttle", 0.6, ["cot_elicitation"], time.time_ns() // 1000)])
        await wait_for(lambda: not responder.available)
        served = await client.post("/v1/chat/completions", json=BODY)
        assert served.status_code == 200  # fail open: served, under the standing held in memory
        assert served.headers["x-ratelimit-limit-requests"] == "10"  # still throttled
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, 'distillguard_response_available{component="store"}') == 0.0
        assert metric(metrics, 'distillguard_fail_mode_calls_total{mode="open"}') >= 1.0
        book.record = original  # type: ignore[method-assign]
        await wait_for(lambda: responder.available)
        # The move made while the store was down was kept and written once it came back.
        assert book.standing("acct").level == "throttle"
        assert [e.action for e in book.audit()] == ["level_escalated"]


async def test_a_fault_of_ours_mid_stream_is_an_error_event_and_a_failed_call(
    start: Start, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If relaying a stream raises (a transform's bug), the client reads an error in the stream and the call is
    logged as failed (500, internal_error): never as a 200 with a cut answer."""

    class FailingRelay:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.done = False

        def feed(self, data: bytes) -> bytes | None:
            raise RuntimeError("transform bug")

    caplog.set_level(logging.ERROR)
    async with start("open") as (_, client):
        monkeypatch.setattr(exchange, "ChunkRelay", FailingRelay)
        async with client.stream("POST", "/v1/chat/completions", json={**BODY, "stream": True}) as response:
            body = b"".join([part async for part in response.aiter_bytes()])
        assert response.status_code == 200  # the headers were out before the fault
        error = orjson.loads(body.split(b"data: ", 1)[1])["error"]
        assert error["code"] == "internal_error" and "transform bug" not in error["message"]
        assert any(r.getMessage() == "relaying the stream failed" for r in caplog.records)
        metrics = (await client.get("/metrics")).text
        assert any(
            line.startswith("distillguard_requests_total") and 'status="500"' in line for line in metrics.splitlines()
        )
