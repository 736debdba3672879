"""The event log loses nothing on a graceful stop, and at most the last flush interval on kill -9."""

from __future__ import annotations

import signal
import time

import openai
import pytest

from tests.e2e.conftest import StartGateway
from tests.support.load import MESSAGES, answered_until_sigterm

pytestmark = pytest.mark.e2e


async def test_graceful_stop_during_load_loses_no_event(start_gateway: StartGateway) -> None:
    # A long flush interval: only the shutdown drain can have written these events.
    gw = start_gateway(config="[events]\nflush_interval_ms = 60000\nbatch_size = 100000\n")
    answered = await answered_until_sigterm(gw)
    assert "gateway stopped" in gw.log()
    logged = {e["event_id"] for e in gw.events()}
    assert set(answered) <= logged, f"{len(set(answered) - logged)} answered calls have no event"


def test_kill_9_loses_at_most_the_last_flush_interval(start_gateway: StartGateway) -> None:
    flush_ms = 100
    gw = start_gateway(config=f"[events]\nflush_interval_ms = {flush_ms}\n")
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    ids = [
        c.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES).headers["x-request-id"]
        for _ in range(50)
    ]
    # The documented bound: events older than one flush interval (plus the write itself) are durable.
    time.sleep(5 * flush_ms / 1000)
    gw.stop(signal.SIGKILL)
    assert gw.proc.returncode == -signal.SIGKILL
    assert [e["event_id"] for e in gw.events()] == ids  # the WAL database opens cleanly after the crash
