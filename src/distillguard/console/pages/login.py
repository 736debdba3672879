"""``/login`` and ``/logout``: an admin token in, a signed session cookie out (see console/auth.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from distillguard.console.auth import COOKIE, LOGIN_COOKIE, LOGIN_TTL_S, Session, Sessions, token_id_of
from distillguard.console.context import ConsoleContext
from distillguard.console.page import NO_STORE
from distillguard.console.render import environment

log = logging.getLogger(__name__)

# A failed login waits this long: guessing tokens online is hopeless anyway (256 random bits), this keeps the
# attempts from costing the store much.
FAILED_LOGIN_DELAY_S = 0.25
MAX_TOKEN = 200


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _secure(request: Request, ctx: ConsoleContext) -> bool:
    return ctx.settings.console.cookie_secure or request.url.scheme == "https"


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after logging in: a path inside the console, never another site."""
    base = _base(request)
    if target and target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return base + "/"


def warm_up(ctx: ConsoleContext) -> None:
    """What the first page after a login would otherwise wait for: plotly's figure machinery, and the overview's
    settled action counts."""
    from distillguard.console import charts
    from distillguard.console.read.overview import read_overview

    charts.warm_up()
    for range_name in ("day", "week"):
        read_overview(ctx.engine, ctx.events, ctx.actions, range_name)


class Login:
    def __init__(self, ctx: ConsoleContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self._warming: asyncio.Future[None] | None = None

    def form(
        self,
        request: Request,
        static: Callable[[str], str],
        status: int = 200,
        error: str | None = None,
        target: str | None = None,
    ) -> Response:
        """The login page (and the nonce cookie its CSRF token is bound to); ``target``: where to go after it."""
        nonce = request.cookies.get(LOGIN_COOKIE) or self.sessions.login_nonce()
        html = (
            environment()
            .get_template("login.html")
            .render(
                base=_base(request),
                static=static,
                csrf=self.sessions.csrf(nonce),
                next=safe_next(request, target or request.query_params.get("next")),
                error=error,
            )
        )
        response = HTMLResponse(html, status, headers=NO_STORE)
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_TTL_S,
            path=_base(request) + "/",
            httponly=True,
            samesite="strict",
            secure=_secure(request, self.ctx),
        )
        return response

    async def submit(self, request: Request, form: dict[str, str], static: Callable[[str], str]) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if nonce is None or not self.sessions.csrf_ok(nonce, form.get("csrf")):
            expired = "The login form expired or came from elsewhere. Please try again."
            return self.form(request, static, 403, expired, form.get("next"))
        presented = (form.get("token") or "").strip()
        token_id = token_id_of(presented) if len(presented) <= MAX_TOKEN else None
        name = await asyncio.to_thread(self.ctx.book.admin_name, presented) if token_id else None
        if token_id is None or name is None:
            log.info("console login refused", extra={"token_id": token_id})
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            return self.form(
                request,
                static,
                401,
                "That is not a valid admin token (unknown or revoked). Tokens come from "
                "`distillguard admin token create NAME`.",
                form.get("next"),
            )
        self.sessions.forget(token_id)
        if self._warming is None:  # the charts' library loads while the browser follows the redirect
            self._warming = asyncio.get_running_loop().run_in_executor(None, warm_up, self.ctx)
        cookie, _session = self.sessions.issue(token_id)
        log.info("console login", extra={"token_id": token_id, "reviewer": name})
        response = RedirectResponse(safe_next(request, form.get("next")), 303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.ctx.settings.console.session_ttl_s),
            path=_base(request) + "/",
            httponly=True,
            samesite="strict",
            secure=_secure(request, self.ctx),
        )
        response.delete_cookie(LOGIN_COOKIE, path=_base(request) + "/")
        return response

    def logout(self, request: Request, session: Session) -> Response:
        log.info("console logout", extra={"token_id": session.token_id, "reviewer": session.name})
        response = RedirectResponse(_base(request) + "/login", 303)
        response.delete_cookie(COOKIE, path=_base(request) + "/", httponly=True, samesite="strict")
        return response
