"""Upstream trouble maps to OpenAI-shaped 502/504; broken and abandoned streams are handled and logged."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.e2e.conftest import StartGateway
from tests.support.processes import Mock, free_port

pytestmark = pytest.mark.e2e
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def test_upstream_down_is_502(start_gateway: StartGateway) -> None:
    gw = start_gateway(upstream=f"http://127.0.0.1:{free_port()}/v1", upstream_extra="connect_timeout_s = 2")
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as failure:
        c.chat.completions.create(model="mock-gpt", messages=MESSAGES)
    assert failure.value.status_code == 502
    assert failure.value.body["code"] == "upstream_unavailable"  # type: ignore[index]
    [event] = gw.events()
    assert event["response"]["status"] == 502 and event["response"]["error_code"] == "upstream_unavailable"


def test_slow_upstream_is_504(start_gateway: StartGateway) -> None:
    gw = start_gateway(upstream_extra='api_key = "upstream-secret"\nread_timeout_s = 0.5')
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as failure:
        c.chat.completions.create(model="mock-fault-slow", messages=MESSAGES)
    assert failure.value.status_code == 504
    assert failure.value.body["code"] == "upstream_timeout"  # type: ignore[index]


def test_upstream_500_is_502_and_tokens_are_returned(start_gateway: StartGateway) -> None:
    gw = start_gateway()
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as failure:
        c.chat.completions.create(model="mock-fault-500", messages=MESSAGES, max_tokens=500)
    assert failure.value.status_code == 502 and "answered 500" in failure.value.message
    assert (
        failure.value.response.headers["x-ratelimit-remaining-tokens"]
        == failure.value.response.headers["x-ratelimit-limit-tokens"]
    )


def test_upstream_4xx_passes_through_unchanged(start_gateway: StartGateway) -> None:
    gw = start_gateway(upstream_extra='api_key = "wrong-upstream-key"')
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="mock-gpt", messages=MESSAGES)
    [event] = gw.events()
    assert event["response"]["error_code"] == "invalid_api_key" and event["upstream"] == "primary"


def test_broken_stream_ends_with_an_error_event(start_gateway: StartGateway) -> None:
    gw = start_gateway()
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    received: list[ChatCompletionChunk] = []
    stream = c.chat.completions.create(model="mock-fault-drop", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as failure:
        received.extend(stream)
    assert received, "chunks before the break reach the client"
    assert "upstream stream broke" in str(failure.value)
    [event] = gw.events()
    assert event["response"]["error_code"] == "upstream_stream_broken" and event["response"]["text"]


def test_client_disconnect_cancels_the_upstream_stream(start_gateway: StartGateway, mock_upstream: Mock) -> None:
    gw = start_gateway()
    before = mock_upstream.stats().get("streams_aborted", 0)
    headers = {"authorization": f"Bearer {gw.keys['tester']}"}
    body = {"model": "mock-fault-trickle", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gw.base_url}/chat/completions", json=body, headers=headers) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data:")
    # The client is gone: the gateway must drop its upstream call, not read the trickle to the end.
    deadline = time.monotonic() + 10
    while mock_upstream.stats().get("streams_aborted", 0) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mock_upstream.stats().get("streams_aborted", 0) == before + 1
    deadline = time.monotonic() + 5
    while not gw.events() and time.monotonic() < deadline:
        time.sleep(0.1)
    [event] = gw.events()
    assert event["response"]["status"] == 499 and event["response"]["error_code"] == "client_disconnected"
