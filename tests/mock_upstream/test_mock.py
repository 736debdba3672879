"""The mock upstream: deterministic, OpenAI-shaped, with usage, reasoning and logprobs on request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from distillguard.mock_upstream import MockUpstream, build_mock_app

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "What is 2+2?"}]}


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(build_mock_app(MockUpstream()))) as c:
        yield c


async def test_same_request_same_answer(client: TestClient) -> None:  # type: ignore[type-arg]
    first = await (await client.post("/v1/chat/completions", json=CHAT)).json()
    second = await (await client.post("/v1/chat/completions", json=CHAT)).json()
    other = await (
        await client.post(
            "/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "Something else"}]}
        )
    ).json()
    assert first["choices"] == second["choices"] and first["choices"] != other["choices"]
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_max_tokens_logprobs_and_n(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {**CHAT, "max_tokens": 5, "logprobs": True, "top_logprobs": 2, "n": 3}
    data = await (await client.post("/v1/chat/completions", json=body)).json()
    assert len(data["choices"]) == 3 and data["usage"]["completion_tokens"] == 15
    first = data["choices"][0]
    assert first["finish_reason"] == "length" and len(first["logprobs"]["content"]) == 5
    assert all(len(t["top_logprobs"]) == 2 for t in first["logprobs"]["content"])


async def test_stream_with_reasoning_and_usage(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {**CHAT, "model": "mock-reasoner", "stream": True, "stream_options": {"include_usage": True}}
    raw = await (await client.post("/v1/chat/completions", json=body)).read()
    events = [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert any("reasoning_content" in c["choices"][0]["delta"] for c in chunks if c["choices"])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    whole = await (
        await client.post("/v1/chat/completions", json={**body, "stream": False, "stream_options": None})
    ).json()
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert streamed == whole["choices"][0]["message"]["content"]


async def test_text_completions_and_errors(client: TestClient) -> None:  # type: ignore[type-arg]
    text = await (
        await client.post("/v1/completions", json={"model": "mock-gpt", "prompt": "x", "logprobs": 2, "max_tokens": 3})
    ).json()
    assert text["object"] == "text_completion" and len(text["choices"][0]["logprobs"]["tokens"]) == 3
    assert (await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})).status == 404
    assert (await client.post("/v1/chat/completions", data=b"{")).status == 400
    assert (await client.post("/v1/chat/completions", json={**CHAT, "model": "mock-fault-500"})).status == 500


async def test_api_key_is_enforced_when_set() -> None:
    async with TestClient(TestServer(build_mock_app(MockUpstream(api_key="k")))) as c:
        assert (await c.post("/v1/chat/completions", json=CHAT)).status == 401
        ok = await c.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"})
        assert ok.status == 200
