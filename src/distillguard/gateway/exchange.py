"""One completion call through the gateway: check, limit, forward, stream back, and record the event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from distillguard.events.retention import retained_text
from distillguard.events.schema import Event
from distillguard.gateway.errors import GatewayError, error_body
from distillguard.gateway.responses import BytesResponse
from distillguard.gateway.sse import ChunkRelay, CompletionTap
from distillguard.gateway.upstreams import Upstream
from distillguard.gateway.validation import CHAT, CompletionRequest
from distillguard.limits import Reservation
from distillguard.respond.degrade import ResponseDegrader
from distillguard.watermark.response import ResponseWatermarker

if TYPE_CHECKING:
    from distillguard.gateway.app import Gateway

log = logging.getLogger(__name__)

_PASS_HEADERS = ("openai-processing-ms", "openai-version", "x-should-retry")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def upstream_failure(upstream: Upstream, exc: BaseException) -> GatewayError:
    """Map a client-side exception talking to the upstream onto a 502 or 504."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return GatewayError(504, f"The upstream '{upstream.name}' did not answer in time.", "upstream_timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return GatewayError(502, f"The upstream '{upstream.name}' could not be reached.", "upstream_unavailable")
    return GatewayError(502, f"The upstream '{upstream.name}' failed: {type(exc).__name__}.", "upstream_error")


def _upstream_status_error(upstream: Upstream, status: int, body: bytes) -> GatewayError:
    detail = ""
    try:
        message = orjson.loads(body).get("error", {}).get("message")
        if isinstance(message, str):
            detail = f": {message[:500]}"
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return GatewayError(502, f"The upstream '{upstream.name}' answered {status}{detail}", "upstream_error")


class Exchange:
    """State of one call that reached the upstream stage."""

    def __init__(
        self,
        gateway: Gateway,
        event: Event,
        req: CompletionRequest,
        upstream: Upstream,
        reservation: Reservation,
        headers: dict[str, str],
        started: float,
        degrader: ResponseDegrader | None = None,
        watermarker: ResponseWatermarker | None = None,
    ) -> None:
        self.gw = gateway
        self.degrader = degrader
        self.watermarker = watermarker
        self.event = event
        self.req = req
        self.upstream = upstream
        self.reservation = reservation
        self.headers = headers
        self.started = started
        self.tap = CompletionTap(chat=event.endpoint == CHAT)
        self._settled = False
        self.finished = False

    def _payload(self) -> bytes:
        body = self.req.body
        if self.req.stream and not self.req.include_usage:
            # Ask for the usage chunk to settle token limits; it is kept from the client, who did not ask.
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            return orjson.dumps({**body, "stream_options": options})
        if self.req.rewritten:
            return orjson.dumps(body)
        return self.event.request_raw

    def _pass_headers(self, resp: aiohttp.ClientResponse) -> None:
        for name in _PASS_HEADERS:
            value = resp.headers.get(name)
            if value is not None:
                self.headers[name] = value

    async def run(self) -> BytesResponse | StreamingResponse:
        upstream = self.upstream
        try:
            resp = await upstream.session.post(
                upstream.url(self.event.endpoint[3:]), data=self._payload(), headers=upstream.headers
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failed(exc) from None
        body = b""
        try:
            if resp.status != 200 or not self.req.stream:
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            resp.close()
            raise self._failed(exc) from None
        if resp.status != 200:
            resp.release()
            return self._upstream_refused(resp, body)
        self._pass_headers(resp)
        if not self.req.stream:
            resp.release()
            if self.degrader is not None:
                body = self.degrader.whole(body)
            if self.watermarker is not None:
                body = self.watermarker.whole(body)
            self.tap.whole(body)
            self.finish(200)
            return BytesResponse(body, 200, self.headers)
        return RelayResponse(self, resp)

    def _failed(self, exc: BaseException) -> GatewayError:
        err = upstream_failure(self.upstream, exc)
        self.gw.metrics.upstream_errors.labels(self.upstream.name, err.code or "error").inc()
        self.settle(0)
        err.headers.update(self.headers)
        return err

    def _upstream_refused(self, resp: aiohttp.ClientResponse, body: bytes) -> BytesResponse:
        self.settle(0)
        if resp.status >= 500:
            self.gw.metrics.upstream_errors.labels(self.upstream.name, f"http_{resp.status}").inc()
            err = _upstream_status_error(self.upstream, resp.status, body)
            err.headers.update(self.headers)
            raise err
        # 4xx from an OpenAI-compatible upstream is already in the client's language: pass it on.
        for name in ("retry-after", "retry-after-ms"):
            if name in resp.headers:
                self.headers[name] = resp.headers[name]
        try:
            code = orjson.loads(body).get("error", {}).get("code")
        except (orjson.JSONDecodeError, AttributeError):
            code = None
            body = error_body(resp.status, body.decode("utf-8", "replace")[:500], "upstream_error")
        self.event.error_code = code if isinstance(code, str) else f"upstream_{resp.status}"
        self.event.status = resp.status
        self.gw.record(self.event, self.started)
        return BytesResponse(body, resp.status, self.headers)

    async def _relay(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        relay = ChunkRelay(
            self.tap,
            self.degrader.chunk if self.degrader is not None else None,
            hide_usage=not self.req.include_usage,
            marker=self.watermarker.stream() if self.watermarker is not None else None,
        )
        status, code = 200, None
        try:
            async for data in resp.content.iter_any():
                if self.event.ttft_ms is None:
                    self.event.ttft_ms = (time.perf_counter() - self.started) * 1000
                out = relay.feed(data)
                if out is not None:
                    yield out
            out = relay.close()
            if out is not None:
                yield out
            if self.tap.error is not None:
                status, code = 502, "upstream_stream_error"
        except (asyncio.CancelledError, GeneratorExit):
            if not relay.done:  # a client that hangs up once it has [DONE] got the whole answer
                status, code = 499, "client_disconnected"
            resp.close()  # drop the upstream connection so the backend stops generating
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            err = upstream_failure(self.upstream, exc)
            status, code = err.status, "upstream_stream_broken"
            self.gw.metrics.upstream_errors.labels(self.upstream.name, code).inc()
            resp.close()
            held = relay.close(broken=True)  # the words the watermark still held: the client has paid for them
            if held is not None:
                yield held
            # Headers are gone already: tell the client in the stream, as OpenAI does, then end it.
            yield b"data: " + error_body(err.status, f"The upstream stream broke: {err.message}", code) + b"\n\n"
        except Exception:
            # A fault of ours in the middle of a stream (a transform that raised): the client hears it in the stream
            # and the call is logged as failed, never as a 200 with a cut answer.
            log.exception("relaying the stream failed", extra={"event_id": self.event.event_id})
            status, code = 500, "internal_error"
            resp.close()
            yield b"data: " + error_body(500, "The gateway failed while relaying the stream.", code) + b"\n\n"
        finally:
            resp.release()
            self.finish(status, code)

    def settle(self, tokens: int | None) -> None:
        if not self._settled:
            self._settled = True
            actual = self.reservation.tokens if tokens is None else tokens
            self.gw.limiter.settle(self.reservation, actual)

    def finish(self, status: int, code: str | None = None) -> None:
        """Record the call (once) and settle its tokens."""
        if self.finished:
            return
        self.finished = True
        tap, event = self.tap, self.event
        event.status = status
        event.error_code = code
        event.finish_reason = tap.finish_reason
        event.prompt_tokens = tap.prompt_tokens
        event.completion_tokens = tap.completion_tokens
        if self.watermarker is not None:
            event.extra["watermark"] = self.watermarker.summary()
        if self.degrader is not None and self.degrader.applied:
            response = event.extra.setdefault("response", {})
            response["degraded"] = [*response.get("degraded", []), *self.degrader.applied]
            response["reasoning_chars_removed"] = self.degrader.reasoning_chars_removed
        if tap.parts:
            cfg = self.gw.settings.events
            event.text, event.text_sha256 = retained_text(tap.text, cfg.text_mode, cfg.truncate_chars)
        total = tap.total_tokens
        if total is None and status == 200:
            # No usage from the upstream: charge the estimate plus what we saw, not the whole reservation.
            total = self.req.prompt_tokens_estimate + len(tap.text) // 4
        self.settle(total)
        self.gw.record(event, self.started)


class RelayResponse(StreamingResponse):
    """The SSE relay. If the client leaves before the first chunk is pulled, the relay generator never starts
    (so its cleanup never runs): this closes the upstream call and records the event in that case too."""

    def __init__(self, exchange: Exchange, upstream: aiohttp.ClientResponse) -> None:
        super().__init__(
            exchange._relay(upstream), 200, {**exchange.headers, **_SSE_HEADERS}, media_type="text/event-stream"
        )
        self._exchange = exchange
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._exchange.finished:
                self._upstream.close()
                self._exchange.finish(499, "client_disconnected")
