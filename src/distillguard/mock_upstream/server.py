"""The mock upstream's HTTP server (aiohttp.web), with fault-injection models for tests.

Models: ``mock-gpt`` (plain), ``mock-reasoner`` (adds ``reasoning_content``), and faults:
``mock-fault-500`` (answers 500), ``mock-fault-slow`` (waits ``slow_s`` before answering),
``mock-fault-drop`` (streams a few chunks, then drops the connection), ``mock-fault-trickle`` (streams one
chunk every ``trickle_s``; used to test client disconnects). ``GET /mock/stats`` counts what it served.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from distillguard.mock_upstream.generator import Generated, generate

MODELS = ("mock-gpt", "mock-reasoner", "mock-fault-500", "mock-fault-slow", "mock-fault-drop", "mock-fault-trickle")
_JSON = "application/json"


def _error(status: int, message: str, code: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


class MockUpstream:
    def __init__(
        self, latency_ms: float = 0.0, slow_s: float = 30.0, trickle_s: float = 0.2, api_key: str | None = None
    ) -> None:
        self.latency_s = latency_ms / 1000
        self.slow_s = slow_s
        self.trickle_s = trickle_s
        self.api_key = api_key
        self.stats: Counter[str] = Counter()
        self.created = int(time.time())

    # handlers ---------------------------------------------------------------------------------------
    async def models(self, _request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": self.created, "owned_by": "distillguard-mock"} for m in MODELS]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=_JSON)

    async def stats_handler(self, _request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(dict(self.stats)), content_type=_JSON)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=False)

    async def _complete(self, request: web.Request, chat: bool) -> web.StreamResponse:
        self.stats["requests"] += 1
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", "invalid_json")
        model = body.get("model")
        if model not in MODELS:
            return _error(404, f"The model `{model}` does not exist.", "model_not_found")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if model == "mock-fault-500":
            self.stats["faults_500"] += 1
            return web.Response(
                body=b'{"error": {"message": "mock failure", "type": "server_error"}}', status=500, content_type=_JSON
            )
        if model == "mock-fault-slow":
            await asyncio.sleep(self.slow_s)
        n_value = body.get("n")
        n = n_value if isinstance(n_value, int) else 1
        generations = [generate(body, reasoning=model == "mock-reasoner", choice=i) for i in range(max(1, n))]
        if body.get("stream"):
            return await self._stream(request, body, generations, chat)
        return web.Response(body=orjson.dumps(self._whole(body, generations, chat)), content_type=_JSON)

    # shapes -----------------------------------------------------------------------------------------
    def _usage(self, generations: list[Generated]) -> dict[str, int]:
        prompt = generations[0].prompt_tokens
        completion = sum(len(g.tokens) + len(g.reasoning) for g in generations)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _whole(self, body: dict[str, Any], generations: list[Generated], chat: bool) -> dict[str, Any]:
        choices = []
        for i, g in enumerate(generations):
            text = "".join(g.tokens)
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if g.reasoning:
                    message["reasoning_content"] = " ".join(g.reasoning)
                choice: dict[str, Any] = {"index": i, "message": message, "finish_reason": g.finish_reason}
                if g.logprobs is not None:
                    choice["logprobs"] = {
                        "content": [_chat_logprob(t, lp) for t, lp in zip(g.tokens, g.logprobs, strict=True)]
                    }
            else:
                choice = {"index": i, "text": text, "finish_reason": g.finish_reason, "logprobs": None}
                if g.logprobs is not None:
                    choice["logprobs"] = _text_logprobs(g)
            choices.append(choice)
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": self._usage(generations),
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], generations: list[Generated], chat: bool
    ) -> web.StreamResponse:
        model = body["model"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.stats["streams_started"] += 1
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        base = {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
        }
        sent = 0
        try:
            for i, g in enumerate(generations):
                pieces: list[tuple[str, str, Any]] = [("reasoning_content", w + " ", None) for w in g.reasoning]
                pieces += [("content", t, g.logprobs[j] if g.logprobs else None) for j, t in enumerate(g.tokens)]
                if chat:
                    await _send(
                        response,
                        {
                            **base,
                            "choices": [
                                {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                            ],
                        },
                    )
                for field, piece, lp in pieces:
                    if chat:
                        choice: dict[str, Any] = {"index": i, "delta": {field: piece}, "finish_reason": None}
                        if lp is not None:
                            choice["logprobs"] = {"content": [_chat_logprob(piece, lp)]}
                    else:
                        if field != "content":
                            continue
                        choice = {"index": i, "text": piece, "finish_reason": None, "logprobs": None}
                    await _send(response, {**base, "choices": [choice]})
                    sent += 1
                    if model == "mock-fault-drop" and sent == 3:
                        self.stats["streams_dropped"] += 1
                        assert request.transport is not None
                        request.transport.abort()
                        return response
                    if model == "mock-fault-trickle":
                        await asyncio.sleep(self.trickle_s)
                final: dict[str, Any] = {"index": i, "finish_reason": g.finish_reason}
                if chat:
                    final["delta"] = {}
                else:
                    final.update(text="", logprobs=None)
                await _send(response, {**base, "choices": [final]})
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                await _send(response, {**base, "choices": [], "usage": self._usage(generations)})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            self.stats["streams_completed"] += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats["streams_aborted"] += 1
            raise
        return response


async def _send(response: web.StreamResponse, chunk: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")


def _chat_logprob(token: str, lp: tuple[float, list[tuple[str, float]]]) -> dict[str, Any]:
    value, alternatives = lp
    return {
        "token": token,
        "logprob": value,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alternatives],
    }


def _text_logprobs(g: Generated) -> dict[str, Any]:
    assert g.logprobs is not None
    offsets, pos = [], 0
    for t in g.tokens:
        offsets.append(pos)
        pos += len(t)
    return {
        "tokens": g.tokens,
        "token_logprobs": [lp for lp, _ in g.logprobs],
        "top_logprobs": [dict(alts) for _, alts in g.logprobs],
        "text_offset": offsets,
    }


MOCK_KEY = web.AppKey("mock", MockUpstream)


def build_mock_app(mock: MockUpstream | None = None) -> web.Application:
    mock = mock or MockUpstream()
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[MOCK_KEY] = mock
    app.router.add_post("/v1/chat/completions", mock.chat)
    app.router.add_post("/v1/completions", mock.completions)
    app.router.add_get("/v1/models", mock.models)
    app.router.add_get("/mock/stats", mock.stats_handler)
    return app


@contextlib.asynccontextmanager
async def running_mock(host: str = "127.0.0.1", port: int = 0, mock: MockUpstream | None = None) -> Any:
    """Run the mock in the current event loop; yields its base URL (``http://host:port/v1``)."""
    runner = web.AppRunner(build_mock_app(mock), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        await runner.cleanup()


def run_mock(host: str, port: int, mock: MockUpstream) -> None:
    """Serve the mock until interrupted (``distillguard mock-upstream``)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep the mock usable without it
        pass
    web.run_app(build_mock_app(mock), host=host, port=port, access_log=None, print=None)
