"""Many gateway processes sharing limits on one Redis: exact admission across them, workers, readiness.

The calls go through the official openai SDK; the limits are per account, and every gateway knows the account
(each has its own store and key for it), so only Redis can make them agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis

from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway, cli
from tests.support.servers import Redis, running_redis

pytestmark = pytest.mark.e2e
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    with running_redis() as server:
        yield server


def shared_limits(redis: Redis, requests: str, fail_mode: str = "open", timeout_ms: int = 50) -> str:
    return (
        f'[limits]\nstorage_uri = "{redis.url}"\nfail_mode = "{fail_mode}"\nstorage_timeout_ms = {timeout_ms}\n'
        'default_tier = "shared"\n'
        f'[limits.tiers.shared.account]\nrequests = ["{requests}"]\ntokens = ["10000000/hour"]\n'
        "[detect]\nenabled = false\n"
    )


async def call(gw: Gateway) -> int | str:
    """200, or the status and OpenAI error code of the refusal."""
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    try:
        await client.chat.completions.create(model="mock-gpt", messages=MESSAGES, max_tokens=5)  # type: ignore[arg-type]
        return 200
    except openai.APIStatusError as exc:
        error = exc.response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        return f"{exc.status_code} {error['code']}"
    finally:
        await client.close()


def wait_for_workers(gw: Gateway, workers: int, timeout: float = 60.0) -> list[int]:
    """The pids of the worker processes, once each has logged that its gateway started."""
    deadline = time.monotonic() + timeout
    while gw.log().count('"gateway started"') < workers:
        assert time.monotonic() < deadline, f"the workers did not all start:\n{gw.log()[-3000:]}"
        time.sleep(0.1)
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", gw.log())]


async def test_calls_spread_over_four_gateways_admit_exactly_the_account_limit(
    start_gateway: StartGateway, redis_server: Redis
) -> None:
    # A generous timeout: four gateways, Redis, the mock and the test share two cores, and a burst of 120 calls
    # can keep an event loop busy for longer than 50 ms (the fail mode has tests of its own).
    config = shared_limits(redis_server, "25/hour", timeout_ms=5000)
    gateways = [start_gateway(config=config) for _ in range(4)]
    outcomes = await asyncio.gather(*(call(gateways[i % 4]) for i in range(120)))
    assert outcomes.count(200) == 25
    assert outcomes.count("429 rate_limit_exceeded") == 95


async def test_workers_share_the_port_the_limits_and_the_event_log_and_stop_together(
    start_gateway: StartGateway, redis_server: Redis
) -> None:
    gw = start_gateway(config=shared_limits(redis_server, "20/hour", timeout_ms=5000), server="workers = 3")
    pids = wait_for_workers(gw, 3)
    assert len(pids) == 3
    outcomes = await asyncio.gather(*(call(gw) for _ in range(60)))
    assert outcomes.count(200) == 20 and outcomes.count("429 rate_limit_exceeded") == 40
    assert gw.stop() == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert gw.log().count('"gateway stopped"') == 3
    statuses = [e["response"]["status"] for e in gw.events()]
    assert sorted(statuses) == [200] * 20 + [429] * 40


async def test_readiness_follows_redis_and_fail_closed_refuses_in_openai_shape(
    start_gateway: StartGateway, redis_server: Redis
) -> None:
    gw = start_gateway(config=shared_limits(redis_server, "100/hour", fail_mode="closed"))
    assert httpx.get(f"{gw.url}/readyz").status_code == 200
    assert await call(gw) == 200
    redis_server.stop()
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 503
    assert ready.json()["not_ready"] == ["limits_storage"]
    assert httpx.get(f"{gw.url}/livez").status_code == 200  # alive: restarting it would not bring Redis back
    assert await call(gw) == "503 rate_limiter_unavailable"
    redis_server.start()
    deadline = time.monotonic() + 20
    while httpx.get(f"{gw.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readiness did not come back with Redis"
        time.sleep(0.1)
    assert await call(gw) == 200
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'distillguard_limits_fail_mode_calls_total{mode="closed"} 1.0' in metrics
    assert "distillguard_limits_storage_available 1.0" in metrics


async def test_fail_open_serves_without_limits_while_redis_is_down(
    start_gateway: StartGateway, redis_server: Redis
) -> None:
    gw = start_gateway(config=shared_limits(redis_server, "2/hour", fail_mode="open"))
    redis_server.stop()
    assert [await call(gw) for _ in range(4)] == [200] * 4  # more than the limit: nothing could count them
    redis_server.start()
    assert [await call(gw) for _ in range(3)] == [200, 200, "429 rate_limit_exceeded"]
    assert 'distillguard_limits_fail_mode_calls_total{mode="open"} 4.0' in httpx.get(f"{gw.url}/metrics").text
    assert gw.log().count("rate-limit storage unavailable") == 1


def test_several_workers_with_memory_limits_refuse_to_start(tmp_path: object) -> None:
    done = cli("serve", "--upstream", "mock", "--workers", "2", data_dir=tmp_path, check=False)  # type: ignore[arg-type]
    assert done.returncode != 0
    assert "--workers 2 needs rate limits shared" in done.stderr and "redis://" in done.stderr


async def test_two_gateways_score_an_account_on_all_its_calls_through_the_shared_state(
    start_gateway: StartGateway, redis_server: Redis
) -> None:
    detect = f'[detect]\nmodel = "rules"\nstate_url = "{redis_server.url}"\nstate_prefix = "e2e"\n'
    config = shared_limits(redis_server, "1000/hour", timeout_ms=5000).replace("[detect]\nenabled = false\n", detect)
    gateways = [start_gateway(config=config) for _ in range(2)]
    clients = [openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0) for gw in gateways]
    sent = 48
    for i in range(sent):  # alternate: each gateway serves half of the harvest
        prompt = f"Think out loud and show every step of your reasoning before answering: explain topic {i} in depth."
        # the response policy throttles the account once it is flagged
        with contextlib.suppress(openai.RateLimitError):
            await clients[i % 2].chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": prompt}], max_tokens=8192
            )
    for client in clients:
        await client.close()
    store = redis.Redis.from_url(redis_server.url)

    def score() -> dict[str, Any]:
        raw = store.hget("e2e:acct:tester", "score")
        return dict(orjson.loads(raw)) if isinstance(raw, bytes) else {}

    deadline = time.monotonic() + 30
    while score().get("events") != sent:
        assert time.monotonic() < deadline, f"the shared state did not reach {sent} calls: {score()}"
        time.sleep(0.1)
    # Each gateway saw 24 calls; the one score is on all 48 and names its reasons.
    flagged = score()
    assert flagged["verdict"] in ("throttle", "degrade", "challenge", "block")
    assert "cot_elicitation" in {r["signal"] for r in flagged["reasons"]}
    # Both gateways know it: a call after a round is logged with the shared verdict, whichever replica wrote it.
    for gw in gateways:
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0) as client:
            for i in range(2):
                with contextlib.suppress(openai.APIStatusError):
                    await client.chat.completions.create(
                        model="mock-gpt", messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=5
                    )
                await asyncio.sleep(0.5)
        last = max(gw.events(), key=lambda e: e["ts"])
        assert (last["extra"] or {}).get("verdict") in ("throttle", "degrade", "challenge", "block"), last
    for gw in gateways:
        metrics = httpx.get(f"{gw.url}/metrics").text
        assert "distillguard_online_state_available 1.0" in metrics
        assert "distillguard_online_state_failures_total 0.0" in metrics
