"""A real gateway with ``[events] sink = "redis"``, driven by the OpenAI SDK, archived by an ingest worker.

SIGTERM during load loses nothing; kill -9 loses at most the last flush interval (here: nothing, after a wait of a
few intervals) and duplicates nothing; a Redis outage does not stop the API, and the backlog arrives afterwards.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest

from distillguard.ingest.archive import read_archive
from distillguard.ingest.worker import IngestOptions, IngestWorker
from tests.e2e.conftest import StartGateway
from tests.support.load import MESSAGES, answered_until_sigterm
from tests.support.servers import Redis

pytestmark = pytest.mark.e2e


def stream_config(server: Redis, flush_ms: int = 100, extra: str = "") -> str:
    return f'[events]\nsink = "redis"\nstream_url = "{server.url}"\nflush_interval_ms = {flush_ms}\n{extra}'


def archive(server: Redis, out: Path) -> Counter[str]:
    worker = IngestWorker(IngestOptions(stream_url=server.url, out=out, consumer="e2e"))
    worker.run(until_idle=True)
    worker.close()
    return Counter(read_archive(out, ["event_id"]).column("event_id").to_pylist())


async def test_sigterm_during_load_loses_no_event(
    start_gateway: StartGateway, redis_server: Redis, tmp_path: Path
) -> None:
    # A long flush interval: only the shutdown drain can have sent these events.
    gw = start_gateway(config=stream_config(redis_server, 60_000, "batch_size = 100000\n"))
    answered = await answered_until_sigterm(gw)
    archived = await asyncio.to_thread(archive, redis_server, tmp_path / "archive")
    assert set(answered) <= set(archived), f"{len(set(answered) - set(archived))} answered calls have no event"
    assert max(archived.values()) == 1


def test_kill_9_loses_at_most_the_last_flush_interval_and_duplicates_nothing(
    start_gateway: StartGateway, redis_server: Redis, tmp_path: Path
) -> None:
    flush_ms = 100
    gw = start_gateway(config=stream_config(redis_server, flush_ms))
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    ids = [
        c.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES).headers["x-request-id"]
        for _ in range(50)
    ]
    # The documented bound: events older than one flush interval (plus the append itself) are in the stream.
    time.sleep(5 * flush_ms / 1000)
    gw.stop(signal.SIGKILL)
    assert gw.proc.returncode == -signal.SIGKILL
    assert archive(redis_server, tmp_path / "archive") == Counter(ids)


def test_a_redis_outage_does_not_stop_the_api_and_the_backlog_arrives(
    start_gateway: StartGateway, redis_server: Redis, tmp_path: Path
) -> None:
    gw = start_gateway(config=stream_config(redis_server))
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)

    def call() -> str:
        return c.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES).headers["x-request-id"]

    redis_server.stop()
    during = [call() for _ in range(30)]
    queued = httpx.get(f"{gw.url}/healthz", timeout=5).json()["event_queue"]
    assert queued == 30  # held in the bounded local queue, visible in /healthz and distillguard_event_queue_depth
    assert "distillguard_event_queue_depth 30.0" in httpx.get(f"{gw.url}/metrics", timeout=5).text
    redis_server.start()  # an empty Redis: only the backlog can fill it
    deadline = time.monotonic() + 30
    while httpx.get(f"{gw.url}/healthz", timeout=5).json()["event_queue"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = [call() for _ in range(5)]
    gw.stop()
    assert archive(redis_server, tmp_path / "archive") == Counter(during + after)
