"""The gateway's ASGI application: routes, the request pipeline and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from distillguard.config import Settings
from distillguard.console.app import gateway_console
from distillguard.events import EventSink, open_sink
from distillguard.events.schema import Event, unparsed_request
from distillguard.gateway.admin import admin_routes
from distillguard.gateway.auth import Authenticator, Principal
from distillguard.gateway.client_ip import ClientIPResolver
from distillguard.gateway.errors import GatewayError, error_body
from distillguard.gateway.exchange import Exchange
from distillguard.gateway.fingerprint import header_order, tls_fingerprint
from distillguard.gateway.metrics import GatewayMetrics
from distillguard.gateway.ratelimit_headers import decision_headers, window_headers
from distillguard.gateway.responses import BytesResponse
from distillguard.gateway.upstreams import UpstreamRouter
from distillguard.gateway.validation import (
    CHAT,
    COMPLETIONS,
    CompletionRequest,
    parse_completion_request,
    parse_json_body,
    too_large,
)
from distillguard.limits import LimiterUnavailable, RuleSet, open_limiter
from distillguard.mock_upstream.server import running_mock
from distillguard.respond.degrade import ResponseDegrader
from distillguard.respond.policy import ALLOW
from distillguard.store import StateStore, open_store
from distillguard.watermark.keys import Watermarks
from distillguard.watermark.response import ResponseWatermarker

if TYPE_CHECKING:
    from distillguard.clusters.job import ClusteringJob
    from distillguard.gateway.detection import OnlineDetection
    from distillguard.gateway.enforcement import Enforcement
    from distillguard.respond.book import CaseBook
    from distillguard.respond.responder import Responder

log = logging.getLogger(__name__)
# The upstream base URL that asks for the in-process mock (demo, tests, benchmarks).
MOCK_UPSTREAM = "mock"
# How long /readyz waits for each dependency: under the 1 s default timeout of a Kubernetes probe.
READY_TIMEOUT_S = 0.8


_ids = random.Random(secrets.randbits(128))


def new_request_id(ts_us: int) -> str:
    """``req_`` + 13 hex digits of microseconds + 11 random: unique, and sorted by time (cheap appends)."""
    return f"req_{ts_us:013x}{_ids.getrandbits(44):011x}"


class Gateway:
    """Everything one gateway process holds: store, limiter, upstream pools, event sink, metrics."""

    def __init__(self, settings: Settings, store: StateStore | None = None, sink: EventSink | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.data_dir, settings.store_url, settings.secret)
        self.sink = sink or open_sink(settings.data_dir, settings.events)
        self.limiter = open_limiter(settings.limits)
        self.auth = Authenticator(self.store, settings.limits, self.store.secret, settings.server.auth_cache_ttl_s)
        self.router = UpstreamRouter(settings.upstreams)
        self.metrics = GatewayMetrics()
        limiter = self.limiter
        self.metrics.bind_limits(lambda: float(limiter.available))
        if limiter.shared:
            limiter.observe = self.metrics.observe_limits_storage
        self.metrics.bind_event_queue(lambda: self.sink.depth, lambda: getattr(self.sink, "written", 0))
        self.in_flight = 0
        self.metrics.requests_in_flight.set_function(lambda: self.in_flight)
        # Sinks with metrics of their own (the Redis stream: dropped events, stream length, consumer lag).
        register = getattr(self.sink, "register_metrics", None)
        if register is not None:
            register(self.metrics.registry)
        self.client_ip = ClientIPResolver(settings.server.trusted_proxies)
        self.watermarks = Watermarks(settings.watermark, self.store.secret)
        header = settings.server.tls_fingerprint_header
        self._tls_header = header.lower().encode("latin-1") if header else None
        self._max_body = settings.server.max_body_bytes
        self._max_tokens_cap = settings.server.max_tokens_cap
        self._completion_reserve = settings.limits.default_completion_reserve
        self._resources = contextlib.AsyncExitStack()
        self.detection: OnlineDetection | None = None
        if settings.detect.enabled:
            # Imported only when enabled: the detection stack (scikit-learn, NumPy) costs ~100 MB of memory.
            from distillguard.gateway.detection import OnlineDetection
            from distillguard.gateway.scores import ScoreWriter

            self.detection = OnlineDetection(settings.detect)
            # Every account's newest score, for the console (written off the loop, once a second).
            self.detection.scores = ScoreWriter(self.store.engine)
            shared = self.detection.shared
            if shared is not None:
                self.metrics.bind_online_state(shared.stats, lambda: shared.pending)
            self.metrics.bind_scores(self.detection.scores)
            if settings.intel.enabled:
                from distillguard.intel.runtime import IntelRuntime

                self.detection.attach_intel(
                    IntelRuntime(settings.intel, settings.data_dir, self.store.engine, settings.detect.thresholds)
                )
        self.book: CaseBook | None = None
        self.responder: Responder | None = None
        self.enforcement: Enforcement | None = None
        if settings.respond.enabled:
            from distillguard.gateway.enforcement import Enforcement
            from distillguard.respond.book import CaseBook
            from distillguard.respond.responder import Responder

            self.book = CaseBook(self.store.engine, self.store.secret, settings.respond, settings.detect.thresholds)
            self.responder = Responder(settings.respond, self.book, watch_scorer=self.detection is not None)
            self.enforcement = Enforcement(settings.respond, settings.server.max_tokens_cap)
            if self.detection is not None:
                self.detection.responder = self.responder
                if self.detection.intel is not None:
                    self.detection.intel.book = self.book
            responder = self.responder
            self.metrics.bind_response(lambda: float(responder.scorer_ok), lambda: float(responder.store_ok))
        self.clustering: ClusteringJob | None = None
        if settings.clusters.enabled and settings.events.sink == "sqlite":
            from distillguard.clusters.job import ClusteringJob

            self.clustering = ClusteringJob(settings)
            self.metrics.bind_clustering(self.clustering)

    # lifecycle --------------------------------------------------------------------------------------
    async def startup(self) -> None:
        for upstream in self.router.upstreams:
            if upstream.base_url == MOCK_UPSTREAM:
                upstream.base_url = await self._resources.enter_async_context(running_mock())
                log.info("in-process mock upstream started", extra={"base_url": upstream.base_url})
        self.sink.start()
        await self.limiter.ping()  # connects and loads the shared storage's scripts; an outage is logged
        if self.responder is not None:
            self.responder.load()
            self.responder.start()
        if self.detection is not None:
            self.detection.start()
            if self.detection.intel is not None:
                self.detection.intel.start()
        if self.clustering is not None:
            self.clustering.start()
        elif self.settings.clusters.enabled:
            log.info("campaign clustering is off: events go to the Redis stream, not to events.db (docs/clusters.md)")
        # Everything alive now (modules, config, pools) lives as long as the process: move it out of the
        # collector's sight, so full collections under load walk only request-scoped objects (measured: ~50 ms
        # pauses every few seconds at 4,000 calls/s without this).
        gc.collect()
        gc.freeze()
        log.info(
            "gateway started",
            extra={"upstreams": [u.name for u in self.router.upstreams], "data_dir": str(self.settings.data_dir)},
        )

    async def shutdown(self) -> None:
        if self.clustering is not None:
            await self.clustering.stop()
        if self.detection is not None:
            if self.detection.intel is not None:
                await self.detection.intel.stop()
            await self.detection.stop()
        if self.responder is not None:
            await self.responder.stop()
        await self.router.close()
        await self.limiter.aclose()
        await self._resources.aclose()
        depth = self.sink.depth
        self.sink.close()
        self.store.close()
        log.info("gateway stopped", extra={"events_flushed_at_stop": depth})

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    # the event log ----------------------------------------------------------------------------------
    def record(self, event: Event, started: float) -> None:
        elapsed = time.perf_counter() - started
        event.latency_ms = round(elapsed * 1000, 3)
        self.sink.submit(event)
        if event.signals is not None and self.detection is not None:
            self.detection.observe(event, event.signals)
        # Label by route, never by raw path: clients choose paths, and every label value is a new time series.
        route = event.endpoint if event.endpoint in _ROUTE_LABELS else "other"
        if route == "other" and event.endpoint.startswith("/v1/models/"):
            route = "/v1/models/{model}"
        self.metrics.observe(route, event.status, elapsed)
        if event.ttft_ms is not None:
            self.metrics.ttft.labels(route).observe(event.ttft_ms / 1000)

    # request pipeline -------------------------------------------------------------------------------
    async def _read_body(self, receive: Receive, content_length: str | None, event: Event) -> bytes:
        if content_length is not None and content_length.isdigit() and int(content_length) > self._max_body:
            event.request_raw = unparsed_request(b"", 0)
            raise too_large(self._max_body)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                event.request_raw = unparsed_request(b"".join(chunks))
                raise too_large(self._max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _begin(self, scope: Scope) -> tuple[Event, str | None, str | None]:
        """The event of a call that just arrived, with its Authorization and Content-Length headers."""
        authorization = user_agent = forwarded_for = content_length = tls = None
        names: list[bytes] = []
        tls_header = self._tls_header
        for name, value in scope["headers"]:
            names.append(name)
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value.decode("latin-1")
            elif name == tls_header:
                tls = value.decode("latin-1")
        peer = scope.get("client")
        peer_ip = peer[0] if peer else None
        ts_us = time.time_ns() // 1000
        event = Event(
            event_id=new_request_id(ts_us),
            ts_us=ts_us,
            endpoint=scope["path"],
            request_raw=b"{}",
            client_ip=self.client_ip.resolve(peer_ip, forwarded_for),
            user_agent=user_agent,
            client_fingerprint=header_order(names, tls_header),
            # Anyone can send the header: it is believed only from a trusted fronting proxy.
            client_tls=tls_fingerprint(tls) if tls is not None and self.client_ip.trusted(peer_ip) else None,
        )
        return event, authorization, content_length

    def _identify(self, authorization: str | None, event: Event) -> Principal:
        principal = self.auth.authenticate(authorization)
        event.account_id = principal.account.account_id
        event.key_id = principal.key.key_id
        event.org_id = principal.account.org_id
        return principal

    def _detect(self, event: Event, req: CompletionRequest, principal: Principal) -> None:
        """Signals of this call (computed once, stored with the event) and the account's verdict so far."""
        assert self.detection is not None
        self.detection.know(principal.account)
        event.signals = self.detection.signals(req.body, event.endpoint)
        score = self.detection.current(principal.account.account_id)
        if score is not None and score.verdict != "allow":
            event.extra["verdict"] = score.verdict
            event.extra["risk"] = round(score.risk, 4)

    async def completion(self, scope: Scope, receive: Receive) -> ASGIApp:
        """POST /v1/chat/completions and /v1/completions, from raw ASGI (the hot path skips Starlette's layers)."""
        started = time.perf_counter()
        event, authorization, content_length = self._begin(scope)
        reply_headers = {"x-request-id": event.event_id}
        principal: Principal | None = None
        try:
            raw = await self._read_body(receive, content_length, event)
            event.request_raw = raw
            principal = self._identify(authorization, event)
            try:
                body = parse_json_body(raw)
            except GatewayError:
                event.request_raw = unparsed_request(raw)
                raise
            req = parse_completion_request(body, event.endpoint, self._max_tokens_cap)
            event.model = req.model
            event.stream = req.stream
            if self.detection is not None:
                self._detect(event, req, principal)
            rules, degrader = principal.rules, None
            if self.responder is not None:
                decision = self.responder.decide(principal.account)
                if not self.responder.available:
                    self.metrics.fail_mode_calls.labels(self.settings.respond.fail_mode).inc()
                if decision is not ALLOW:
                    assert self.enforcement is not None
                    self.metrics.responses.labels(decision.level, str(decision.applied).lower()).inc()
                    req, rules, degrader = await self.enforcement.apply(event, req, principal, decision)
            flagged = degrader is not None
            campaign = None
            if self.responder is not None and (flagged or self.watermarks.needs_campaign):
                campaign = self.responder.campaign_of(principal.account.account_id)
            watermarker = self.watermarks.for_call(
                principal.account.account_id, flagged, event.endpoint == CHAT, campaign
            )
            return await self._forward(event, req, principal, rules, (degrader, watermarker), reply_headers, started)
        except GatewayError as err:
            if principal is not None and err.status != 429 and err.code != LIMITER_UNAVAILABLE:
                reply_headers.update(window_headers(*await self.limiter.state(principal.rules)))
            event.status = err.status
            event.error_code = err.code
            self.record(event, started)
            return err.response(reply_headers)
        except ClientDisconnect:
            event.status = 499
            event.error_code = "client_disconnected"
            self.record(event, started)
            return BytesResponse(b"", 499)

    async def _forward(
        self,
        event: Event,
        req: CompletionRequest,
        principal: Principal,
        rules: RuleSet,
        transforms: tuple[ResponseDegrader | None, ResponseWatermarker | None],
        reply_headers: dict[str, str],
        started: float,
    ) -> ASGIApp:
        upstream = self.router.route(req.model)
        if upstream is None:
            raise GatewayError(
                404,
                f"The model `{req.model}` does not exist or you do not have access to it.",
                "model_not_found",
                "model",
            )
        event.upstream = upstream.name
        if self.sink.saturated:
            raise GatewayError(
                503, "The gateway is overloaded; retry shortly.", "event_log_backpressure", headers={"retry-after": "1"}
            )
        completion_tokens = req.max_tokens if req.max_tokens is not None else self._completion_reserve
        reserve = req.prompt_tokens_estimate + completion_tokens * req.n
        try:
            decision = await self.limiter.acquire(rules, reserve)
        except LimiterUnavailable:
            self.metrics.limits_fail_mode_calls.labels("closed").inc()
            raise GatewayError(
                503,
                "Rate limiting is temporarily unavailable and this gateway fails closed; retry shortly.",
                LIMITER_UNAVAILABLE,
                headers={"retry-after": "1"},
            ) from None
        if decision.fail_open:
            self.metrics.limits_fail_mode_calls.labels("open").inc()
            event.extra["limits"] = "unavailable: admitted unchecked (fail mode open)"
        reply_headers.update(decision_headers(decision))
        if not decision.allowed:
            rule = decision.denied_by
            assert rule is not None
            self.metrics.rate_limited.labels(rule.scope, rule.kind).inc()
            event.extra["limit"] = rule.describe()
            if decision.retry_after_s is not None:
                event.extra["retry_after_ms"] = int(reply_headers["retry-after-ms"])
            if decision.too_large:
                raise GatewayError(
                    429,
                    f"Request too large for {req.model}: it needs up to {reserve} tokens but the {rule.describe()} "
                    "limit can never hold that. Lower max_tokens or shorten the prompt.",
                    "rate_limit_exceeded",
                    headers={"x-should-retry": "false"},
                )
            raise GatewayError(
                429,
                f"Rate limit reached for {rule.describe()} (account {principal.account.account_id}). "
                f"Please try again in {reply_headers['retry-after-ms']}ms.",
                "rate_limit_exceeded",
                kind="requests" if rule.kind == "requests" else "tokens",
            )
        assert decision.reservation is not None
        exchange = Exchange(self, event, req, upstream, decision.reservation, reply_headers, started, *transforms)
        return await exchange.run()

    async def models(self, request: Request) -> ASGIApp:
        """GET /v1/models and /v1/models/{model}: the upstreams' models, logged like every call."""
        started = time.perf_counter()
        event, authorization, _ = self._begin(request.scope)
        name = request.path_params.get("model")
        if name is not None:
            event.model = name
        try:
            self._identify(authorization, event)
            data = await self.router.list_models()
            if name is None:
                body = orjson.dumps({"object": "list", "data": data})
            else:
                entry = next((m for m in data if m.get("id") == name), None)
                if entry is None:
                    raise GatewayError(
                        404,
                        f"The model `{name}` does not exist or you do not have access to it.",
                        "model_not_found",
                        "model",
                    )
                body = orjson.dumps(entry)
        except GatewayError as err:
            event.status, event.error_code = err.status, err.code
            self.record(event, started)
            return err.response({"x-request-id": event.event_id})
        event.status = 200
        self.record(event, started)
        return BytesResponse(body, 200, {"x-request-id": event.event_id})

    async def refuse_route(self, request: Request, exc: Any) -> BytesResponse:
        """404 for unknown URLs and 405 for wrong methods, in OpenAI's shape, logged (probing is a signal)."""
        started = time.perf_counter()
        event, authorization, _ = self._begin(request.scope)
        if authorization:
            with contextlib.suppress(GatewayError):
                self._identify(authorization, event)
        status = getattr(exc, "status_code", 404)
        if status == 405:
            code, message = "method_not_allowed", f"Method {request.method} is not allowed on {request.url.path}"
        else:
            code, message = "unknown_url", f"Invalid URL ({request.method} {request.url.path})"
        event.status, event.error_code = status, code
        event.extra["method"] = request.method
        self.record(event, started)
        return BytesResponse(error_body(status, message, code), status, {"x-request-id": event.event_id})

    async def healthz(self, _request: Request) -> ASGIApp:
        return BytesResponse(orjson.dumps({"status": "ok", "event_queue": self.sink.depth}))

    async def livez(self, _request: Request) -> ASGIApp:
        """Liveness: the process and its event loop answer. Dependencies are /readyz's business: restarting a
        gateway because Redis is down would not bring Redis back."""
        return BytesResponse(b'{"status":"alive"}')

    async def readyz(self, _request: Request) -> ASGIApp:
        """Readiness: 200 when the state store, an upstream and (if configured) the shared limits storage answer;
        503 naming what does not, so a load balancer sends calls elsewhere until it does."""
        names = ["store", "upstreams"]
        probes = [self._store_ready(), self._upstreams_ready()]
        if self.limiter.shared:
            names.append("limits_storage")
            probes.append(self._limits_ready())
        results = await asyncio.gather(*probes)
        checks = dict(zip(names, results, strict=True))
        not_ready = [name for name, problem in checks.items() if problem is not None]
        body = {
            "status": "not ready" if not_ready else "ready",
            "not_ready": not_ready,
            "checks": {name: problem or "ok" for name, problem in checks.items()},
        }
        return BytesResponse(orjson.dumps(body), 503 if not_ready else 200)

    async def _store_ready(self) -> str | None:
        def select_one() -> None:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            # The store's driver is synchronous: ask from a thread, so a hung database cannot stall the loop.
            await asyncio.wait_for(asyncio.to_thread(select_one), READY_TIMEOUT_S)
        except Exception as exc:  # any failure means not ready; the message says which
            return f"unreachable: {type(exc).__name__}: {exc}"[:300]
        return None

    async def _upstreams_ready(self) -> str | None:
        """None when at least one upstream answers HTTP (any status below 500) on its /models."""
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT_S)
        problems = []
        for upstream in self.router.upstreams:
            try:
                url = upstream.url("/models")
                async with upstream.session.get(url, headers=upstream.headers, timeout=timeout) as resp:
                    if resp.status < 500:
                        return None
                    problems.append(f"{upstream.name}: HTTP {resp.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problems.append(f"{upstream.name}: {type(exc).__name__}")
        return "no upstream answers (" + ", ".join(problems) + ")"

    async def _limits_ready(self) -> str | None:
        return None if await self.limiter.ping() else "rate-limit storage (Redis) does not answer"

    async def metrics_endpoint(self, _request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")


async def _server_error(_request: Request | None, exc: Exception) -> BytesResponse:
    log.error("unhandled error", exc_info=exc)
    return BytesResponse(error_body(500, "The gateway failed to handle the request.", "internal_error"), 500)


class GatewayApp:
    """The ASGI entry point: completion calls go straight to the pipeline, everything else through Starlette."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        routes = [
            Route("/v1/models", gateway.models, methods=["GET"]),
            Route("/v1/models/{model:path}", gateway.models, methods=["GET"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/livez", gateway.livez, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
            Route("/metrics", gateway.metrics_endpoint, methods=["GET"]),
            # Non-POST calls to the completion paths reach Starlette, which answers 405.
            Route(CHAT, _unreachable, methods=["POST"]),
            Route(COMPLETIONS, _unreachable, methods=["POST"]),
            *admin_routes(gateway),
            *gateway_console(gateway),
        ]
        self.starlette = Starlette(
            routes=routes,
            lifespan=gateway.lifespan,
            exception_handlers={404: gateway.refuse_route, 405: gateway.refuse_route, 500: _server_error},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.starlette(scope, receive, send)
            return
        # Requests in flight, the scrape itself aside: 0 with an empty event queue means every call answered so far
        # is in the event log (a call is recorded before its response completes here).
        gateway = self.gateway
        gateway.in_flight += 1
        try:
            if scope["path"] in _COMPLETION_PATHS and scope["method"] == "POST":
                try:
                    response = await gateway.completion(scope, receive)
                except Exception as exc:
                    log.exception("unhandled error in completion pipeline")
                    response = await _server_error(None, exc)
                await response(scope, receive, send)
            else:
                await self.starlette(scope, receive, send)
        finally:
            gateway.in_flight -= 1


_COMPLETION_PATHS = frozenset({CHAT, COMPLETIONS})
LIMITER_UNAVAILABLE = "rate_limiter_unavailable"
_ROUTE_LABELS = frozenset({CHAT, COMPLETIONS, "/v1/models"})


async def _unreachable(_request: Request) -> ASGIApp:  # pragma: no cover - GatewayApp routes these first
    raise RuntimeError("completion routes are served by GatewayApp")


def build_app(gateway: Gateway) -> GatewayApp:
    return GatewayApp(gateway)
