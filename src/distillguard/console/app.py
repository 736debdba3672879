"""The console as an ASGI app: its route table, the login guard, error pages and security headers.

``console_routes(ctx)`` gives the routes to mount (``/console`` redirects to ``/console/``, everything else is the
console's own Starlette app under that path): the gateway adds them to its route list (``gateway_console``), and
``distillguard console`` serves them alone. Inside the mount, unknown paths and failures answer with the console's
own error pages (JSON under ``/api/``), never the gateway's OpenAI-shaped errors and never a stack trace.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from distillguard.console.auth import COOKIE, Session, Sessions
from distillguard.console.context import ConsoleContext
from distillguard.console.errors import ConsoleError
from distillguard.console.page import NO_STORE, Page
from distillguard.console.pages.login import Login
from distillguard.console.render import environment, query
from distillguard.console.static import StaticFiles

if TYPE_CHECKING:
    from distillguard.gateway.app import Gateway

log = logging.getLogger(__name__)

Handler = Callable[[Page], Awaitable[Response]]


def lazy(module: str, name: str) -> Handler:
    """A page handler imported on first use: the gateway mounts the console without loading what the pages read
    with (detection's signal tables and NumPy, STIX) until an analyst opens one (measured: 28 MB and 0.4 s of
    imports in every gateway process otherwise). The import runs in a thread, off the event loop."""
    handler: Handler | None = None

    async def call(page: Page) -> Response:
        nonlocal handler
        if handler is None:
            loaded = await run_in_threadpool(importlib.import_module, f"distillguard.console.pages.{module}")
            handler = getattr(loaded, name)
        return await handler(page)

    return call


# Self only. plotly.js needs no eval; it adds its stylesheet by creating an empty <style> element and filling it
# through the CSSOM (which CSP does not govern): the hash below is the empty string's, so only an empty inline style
# element is allowed, never inline CSS (see docs/console.md).
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CSP = (
    f"default-src 'none'; script-src 'self'; style-src 'self' {EMPTY_STYLE}; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above to every console response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _is_api(request: Request) -> bool:
    root = str(request.scope.get("root_path", ""))
    return request.url.path.startswith(root.rstrip("/") + "/api/")


class Console:
    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        self.sessions = Sessions(ctx.engine, ctx.secret, ctx.settings.console)
        self.assets = StaticFiles()
        self.login = Login(ctx, self.sessions)
        self._max_body = ctx.settings.server.max_body_bytes

    # answers that need no session ---------------------------------------------------------------------
    def error(self, request: Request, status: int, title: str, detail: str, page: Page | None = None) -> Response:
        if _is_api(request):
            body = {"error": {"message": f"{title}: {detail}", "type": "console_error", "status": status}}
            return Response(orjson.dumps(body), status, media_type="application/json", headers=NO_STORE)
        if page is not None:
            return page.render("error.html", status, title=title, detail=detail)
        html = (
            environment()
            .get_template("error.html")
            .render(
                base=str(request.scope.get("root_path", "")).rstrip("/"),
                static=self.static_url(request),
                user=None,
                nav="",
                title=title,
                detail=detail,
            )
        )
        return HTMLResponse(html, status, headers=NO_STORE)

    def static_url(self, request: Request) -> Callable[[str], str]:
        base = str(request.scope.get("root_path", "")).rstrip("/")
        return lambda name: f"{base}/static/{name}?v={self.assets.version(name)}"

    async def _form(self, request: Request) -> dict[str, str]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise ConsoleError(411, "Length required", "Forms are sent with a Content-Length.")
        if int(length) > self._max_body:
            raise ConsoleError(413, "Too large", f"A form may carry at most {self._max_body:,} bytes.")
        form = await request.form(max_files=0, max_fields=64, max_part_size=self._max_body)
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # the guard ----------------------------------------------------------------------------------------
    async def session(self, request: Request) -> Session | None:
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        if self.sessions.recently_checked(session):
            name = self.sessions.check(session)
        else:
            name = await run_in_threadpool(self.sessions.check, session)
        return replace(session, name=name) if name is not None else None

    def guarded(self, handler: Handler, nav: str = "") -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that needs a session (and, on POST, the session's CSRF token)."""

        async def endpoint(request: Request) -> Response:
            page: Page | None = None
            try:
                if not self.assets.loaded:
                    await run_in_threadpool(self.assets.load)
                session = await self.session(request)
                if session is None:
                    if _is_api(request):
                        raise ConsoleError(
                            401, "Not signed in", "Log in to the console again (session missing or expired)."
                        )
                    base = str(request.scope.get("root_path", "")).rstrip("/")
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"{base}/login{query({'next': target})}", 303)
                form = None
                if request.method == "POST":
                    fields = await self._form(request)
                    if not self.sessions.csrf_ok(session.sid, fields.get("csrf")):
                        raise ConsoleError(
                            403,
                            "Form expired",
                            "This form was not issued to this session (or the session changed). Reload and retry.",
                        )
                    form = fields
                page = Page(request, self.ctx, self.sessions, session, self.assets, form, nav)
                return await handler(page)
            except ConsoleError as exc:
                return self.error(request, exc.status, exc.title, exc.detail, page)
            except HTTPException:
                raise  # malformed forms and the like: answered by the app's handler
            except Exception as exc:  # a bug or an unreachable store: logged, never shown as a stack trace
                return await self._failed(request, exc)

        return endpoint

    async def logout(self, page: Page) -> Response:
        await run_in_threadpool(self.sessions.end, page.session)
        return self.login.logout(page.request, page.session)

    async def login_submit(self, request: Request) -> Response:
        try:
            fields = await self._form(request)
        except ConsoleError as exc:
            return self.error(request, exc.status, exc.title, exc.detail)
        if not self.assets.loaded:
            await run_in_threadpool(self.assets.load)
        return await self.login.submit(request, fields, self.static_url(request))

    async def login_form(self, request: Request) -> Response:
        if not self.assets.loaded:
            await run_in_threadpool(self.assets.load)
        return self.login.form(request, self.static_url(request))

    # the app ------------------------------------------------------------------------------------------
    async def _not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return self.error(request, 405, "Method not allowed", f"{request.method} is not allowed here.")
        if status != 404:
            detail = getattr(exc, "detail", "") or "The request could not be handled."
            return self.error(request, status, "Bad request", str(detail))
        return self.error(request, 404, "Not found", "There is no console page at this address.")

    async def _failed(self, request: Request, exc: Exception) -> Response:
        log.error("console page failed", exc_info=exc, extra={"path": request.url.path})
        return self.error(
            request, 500, "Something went wrong", "The console could not show this page; the logs say why."
        )

    def app(self) -> Starlette:
        g = self.guarded
        routes = [
            Route("/", g(lazy("overview", "overview"), "overview"), methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login_submit, methods=["POST"]),
            Route("/logout", g(self.logout), methods=["POST"]),
            Route("/accounts", g(lazy("accounts", "accounts"), "accounts"), methods=["GET"]),
            Route("/api/accounts", g(lazy("accounts", "accounts_api")), methods=["GET"]),
            Route("/accounts/{account_id:path}", g(lazy("account", "account"), "accounts"), methods=["GET"]),
            Route("/events/{event_id}", g(lazy("account", "event"), "accounts"), methods=["GET"]),
            Route("/campaigns", g(lazy("campaigns", "campaigns"), "campaigns"), methods=["GET"]),
            Route("/campaigns/{cluster_id}", g(lazy("campaigns", "campaign"), "campaigns"), methods=["GET"]),
            Route("/review", g(lazy("review", "queue"), "review"), methods=["GET"]),
            Route("/review/{case_id}", g(lazy("review", "case"), "review"), methods=["GET"]),
            Route("/review/{case_id}/{action}", g(lazy("review", "decide"), "review"), methods=["POST"]),
            Route("/intel", g(lazy("intel", "intel"), "intel"), methods=["GET"]),
            Route("/watermark", g(lazy("watermark", "checks"), "watermark"), methods=["GET"]),
            Route("/watermark", g(lazy("watermark", "check"), "watermark"), methods=["POST"]),
            Route("/watermark/{check_id}", g(lazy("watermark", "show"), "watermark"), methods=["GET"]),
            Route("/static/{name}", self.assets.respond, methods=["GET"]),
        ]
        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
            HTTPException: self._not_found,
            Exception: self._failed,
        }
        return Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(SecurityHeaders)])


def console_routes(ctx: ConsoleContext) -> list[BaseRoute]:
    """The console under ``console.path``, and a redirect from the bare path to it."""
    path = ctx.settings.console.path.rstrip("/")

    async def to_console(request: Request) -> Response:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return RedirectResponse(f"{root}{path}/", 307)

    return [Route(path, to_console, methods=["GET", "HEAD"]), Mount(path, app=Console(ctx).app())]


def gateway_console(gateway: Gateway) -> list[BaseRoute]:
    """The console's routes for a gateway's route list (none when ``console.enabled`` is off)."""
    if not gateway.settings.console.enabled:
        return []
    return console_routes(ConsoleContext.from_gateway(gateway))
