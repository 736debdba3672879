"""The official openai SDK, sync, async and streaming, against a real `distillguard serve`."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.processes import Gateway

pytestmark = pytest.mark.e2e
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name three rivers in Europe."}]


def client(gw: Gateway, account: str = "tester", **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.keys[account], max_retries=0, **kw)  # type: ignore[arg-type]


def test_sync_chat_completion_is_proxied_with_usage_and_rate_limit_headers(gateway: Gateway) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES, max_tokens=20)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens <= 20
    for kind in ("requests", "tokens"):
        assert raw.headers[f"x-ratelimit-limit-{kind}"].isdigit()
        assert raw.headers[f"x-ratelimit-remaining-{kind}"].isdigit()
        assert raw.headers[f"x-ratelimit-reset-{kind}"]
    assert int(raw.headers["x-ratelimit-remaining-requests"]) == int(raw.headers["x-ratelimit-limit-requests"]) - 1
    assert raw.headers["x-request-id"].startswith("req_")


async def test_async_client_and_text_completions(gateway: Gateway) -> None:
    aclient = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=gateway.keys["tester"], max_retries=0)
    chat = await aclient.chat.completions.create(model="mock-gpt", messages=MESSAGES)
    text = await aclient.completions.create(model="mock-gpt", prompt="Once upon a time", max_tokens=5)
    await aclient.close()
    assert chat.choices[0].finish_reason == "stop"
    assert text.choices[0].text and text.usage is not None and text.usage.completion_tokens == 5
    assert text.choices[0].finish_reason == "length"


def test_streaming_arrives_chunk_by_chunk_and_hides_usage_the_client_did_not_ask_for(gateway: Gateway) -> None:
    stream = client(gateway).chat.completions.create(model="mock-reasoner", messages=MESSAGES, stream=True)
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = [c for c in chunks if c.choices and getattr(c.choices[0].delta, "reasoning_content", None)]
    assert len(chunks) > 10 and content and reasoning
    assert all(c.usage is None for c in chunks)  # the gateway asked the upstream for usage; the client did not
    event = gateway.events()[-1]
    assert event["stream"] is True and event["response"]["status"] == 200
    assert event["response"]["usage"]["completion_tokens"] > 0  # settled from the hidden usage chunk
    assert event["response"]["text"] == content
    assert event["response"]["ttft_ms"] is not None


def test_streaming_with_usage_requested_passes_usage_through(gateway: Gateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="mock-gpt", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1 and usage[0].total_tokens > 0


def test_logprobs_pass_through(gateway: Gateway) -> None:
    completion = client(gateway).chat.completions.create(
        model="mock-gpt", messages=MESSAGES, logprobs=True, top_logprobs=3, max_tokens=4
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None and len(logprobs.content) == 4
    assert all(len(t.top_logprobs) == 3 for t in logprobs.content)


def test_models_are_listed_from_the_upstream(gateway: Gateway) -> None:
    ids = {m.id for m in client(gateway).models.list()}
    assert {"mock-gpt", "mock-reasoner"} <= ids
    assert client(gateway).models.retrieve("mock-gpt").id == "mock-gpt"
    with pytest.raises(openai.NotFoundError):
        client(gateway).models.retrieve("no-such-model")
    events = gateway.events()
    assert [(e["endpoint"], e["model"], e["response"]["status"]) for e in events] == [
        ("/v1/models", None, 200),
        ("/v1/models/mock-gpt", "mock-gpt", 200),
        ("/v1/models/no-such-model", "no-such-model", 404),
    ]
    assert all(e["account_id"] == "tester" for e in events)


def test_every_call_becomes_an_event_in_the_documented_schema(gateway: Gateway) -> None:
    c = client(gateway)
    c.chat.completions.create(model="mock-gpt", messages=MESSAGES, temperature=0.2, n=1, max_tokens=7)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=MESSAGES)
    events = gateway.events()
    assert [e["response"]["status"] for e in events] == [200, 404]
    ok, missing = events
    for field in (
        "event_id",
        "ts",
        "account_id",
        "key_id",
        "org_id",
        "client",
        "endpoint",
        "model",
        "request",
        "response",
    ):
        assert field in ok
    assert ok["account_id"] == "tester" and ok["endpoint"] == "/v1/chat/completions"
    assert ok["request"]["messages"] == MESSAGES and ok["request"]["temperature"] == 0.2
    assert ok["client"]["ip"] == "127.0.0.1" and ok["client"]["user_agent"].startswith("OpenAI/Python")
    assert ok["ts"].endswith("Z")
    assert ok["response"]["finish_reason"] in ("stop", "length") and ok["response"]["latency_ms"] > 0
    assert set(ok["response"]["usage"]) == {"prompt_tokens", "completion_tokens"}
    assert missing["response"]["error_code"] == "model_not_found"
