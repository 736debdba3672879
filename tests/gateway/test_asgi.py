"""The gateway's ASGI application driven directly, for cases a real client cannot produce on cue."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Message, Scope

from distillguard.gateway.app import Gateway, build_app


def scope(path: str, key: str, method: str = "POST") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


def logged(gw: Gateway) -> list[dict[str, Any]]:
    gw.sink.flush()  # type: ignore[attr-defined]
    return [e.to_json() for e in gw.sink.iter_events()]  # type: ignore[attr-defined]


async def test_client_gone_before_the_first_chunk_still_closes_upstream_and_logs(gateway: tuple[Gateway, str]) -> None:
    gw, key = gateway
    body = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "stream": True})
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> Message:
        try:
            return next(messages)
        except StopIteration:
            return {"type": "http.disconnect"}  # the client is gone at once

    response = await gw.completion(scope("/v1/chat/completions", key), receive)
    blocked = asyncio.Event()

    async def send(_message: Message) -> None:
        await blocked.wait()  # the socket never drains: the body iterator is never reached

    await response(scope("/v1/chat/completions", key), receive, send)
    [event] = logged(gw)
    assert event["response"]["status"] == 499 and event["response"]["error_code"] == "client_disconnected"
    _, tokens = await gw.limiter.state(gw.auth.authenticate(f"Bearer {key}").rules)
    assert tokens is not None and tokens.remaining > 0


async def test_unknown_urls_and_methods_are_refused_and_logged(gateway: tuple[Gateway, str]) -> None:
    gw, key = gateway
    app = build_app(gw)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope("/v1/../admin", key, "GET"), receive, send)
    await app(scope("/v1/completions", key, "PUT"), receive, send)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [404, 405]
    events = logged(gw)
    assert [(e["endpoint"], e["response"]["error_code"], e["account_id"]) for e in events] == [
        ("/v1/../admin", "unknown_url", "acct"),
        ("/v1/completions", "method_not_allowed", "acct"),
    ]
    assert b'endpoint="other"' in gw.metrics.render() and b"/v1/../admin" not in gw.metrics.render()
