"""Rate limits through the real gateway: exact admission, OpenAI's 429 shape and headers, SDK retries."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from distillguard.timefmt import parse_rfc3339
from tests.e2e.conftest import StartGateway

pytestmark = pytest.mark.e2e
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def tier(name: str, requests: list[str], tokens: list[str], scope: str = "account") -> str:
    """A [limits] section whose default tier has these limits in one scope."""
    quoted = [", ".join(f'"{x}"' for x in values) for values in (requests, tokens)]
    return (
        f'[limits]\ndefault_tier = "{name}"\n[limits.tiers.{name}.{scope}]\n'
        f"requests = [{quoted[0]}]\ntokens = [{quoted[1]}]\n"
    )


async def test_exactly_the_limit_passes_under_concurrency(start_gateway: StartGateway) -> None:
    gw = start_gateway(config=tier("tight", ["7/minute"], ["1000000/minute"]))
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)

    async def call() -> int:
        try:
            await client.chat.completions.create(model="mock-gpt", messages=MESSAGES, max_tokens=5)
            return 200
        except openai.RateLimitError:
            return 429

    statuses = await asyncio.gather(*(call() for _ in range(40)))
    await client.close()
    assert statuses.count(200) == 7 and statuses.count(429) == 33


def test_429_has_openai_body_and_headers(start_gateway: StartGateway) -> None:
    gw = start_gateway(config=tier("tight", ["1/minute"], ["1000000/minute"]))
    url, headers = f"{gw.base_url}/chat/completions", {"authorization": f"Bearer {gw.keys['tester']}"}
    body = {"model": "mock-gpt", "messages": MESSAGES, "max_tokens": 5}
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    refused = httpx.post(url, json=body, headers=headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "rate_limit_exceeded"
    assert error["type"] == "requests" and "account requests: 1 per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 120
    assert 0 < int(refused.headers["retry-after-ms"]) <= 120_000
    assert refused.headers["x-ratelimit-limit-requests"] == "1"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"]
    assert refused.headers["x-ratelimit-limit-tokens"] == "1000000"
    [_, event] = gw.events()
    assert event["response"]["status"] == 429 and event["extra"]["limit"] == "account requests: 1 per minute"


def test_token_limit_reserves_max_tokens_and_refuses_what_can_never_fit(start_gateway: StartGateway) -> None:
    gw = start_gateway(config=tier("tokens", ["1000/minute"], ["300/minute"]))
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=3)
    with pytest.raises(openai.RateLimitError) as never:
        c.chat.completions.create(model="mock-gpt", messages=MESSAGES, max_tokens=1000)
    assert "can never hold" in never.value.message
    raw = c.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES, max_tokens=100)
    used = raw.parse().usage
    assert used is not None
    # The reservation (estimate + 100) was settled to the real usage reported by the upstream.
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) <= 300 - 100
    follow = c.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES, max_tokens=1)
    assert int(follow.headers["x-ratelimit-remaining-tokens"]) >= 300 - used.total_tokens - 20
    # Only the first call was refused, and the SDK did not retry it (x-should-retry: false).
    assert [e["response"]["status"] for e in gw.events()] == [429, 200, 200]


def test_sdk_retries_after_the_delay_the_gateway_names(start_gateway: StartGateway) -> None:
    gw = start_gateway(config=tier("burst", ["2/2 second"], ["1000000/minute"]))
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=6)
    for _ in range(5):
        c.chat.completions.create(model="mock-gpt", messages=MESSAGES, max_tokens=3)
    events = gw.events()
    refused = [i for i, e in enumerate(events) if e["response"]["status"] == 429]
    assert refused, "the burst should have met the limit"
    assert sum(e["response"]["status"] == 200 for e in events) == 5
    for i in refused:
        waited_ms = (parse_rfc3339(events[i + 1]["ts"]) - parse_rfc3339(events[i]["ts"])).total_seconds() * 1000
        # The SDK slept for retry-after-ms (its own backoff would start at 500 ms and jitter).
        assert waited_ms >= events[i]["extra"]["retry_after_ms"] * 0.95


def test_org_limit_is_shared_by_the_org_accounts(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        config=tier("org", ["2/minute"], ["1000000/minute"], scope="org"),
        accounts={"a1": ["--org", "acme"], "a2": ["--org", "acme"], "solo": []},
    )

    def call(account: str) -> int:
        headers = {"authorization": f"Bearer {gw.keys[account]}"}
        body = {"model": "mock-gpt", "messages": MESSAGES, "max_tokens": 2}
        return httpx.post(f"{gw.base_url}/chat/completions", json=body, headers=headers).status_code

    assert [call("a1"), call("a2"), call("a1"), call("a2")] == [200, 200, 429, 429]
    assert call("solo") == 200  # no org, no org limit
