"""One request to a console page, signed in: the context, the session, the form (on POST), and how to answer
(a rendered template, JSON, a redirect). Query parameters are parsed here, with the error a person can act on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from distillguard.console.auth import Session, Sessions
from distillguard.console.context import ConsoleContext
from distillguard.console.errors import ConsoleError
from distillguard.console.render import environment
from distillguard.console.static import StaticFiles

T = TypeVar("T")
NO_STORE = {"cache-control": "no-store"}


@dataclass
class Page:
    request: Request
    ctx: ConsoleContext
    sessions: Sessions
    session: Session
    assets: StaticFiles
    form: dict[str, str] | None = None
    nav: str = ""

    @property
    def base(self) -> str:
        """The console's URL prefix (its mount path, behind any root path)."""
        return str(self.request.scope.get("root_path", "")).rstrip("/")

    def url(self, path: str = "/", **params: Any) -> str:
        from distillguard.console.render import query

        return f"{self.base}{path}{query(params)}"

    def static(self, name: str) -> str:
        """A static file's URL, versioned by its content."""
        return f"{self.base}/static/{name}?v={self.assets.version(name)}"

    async def threaded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking read or write off the event loop (the gateway keeps serving calls meanwhile)."""
        return await run_in_threadpool(fn, *args)

    # answers ------------------------------------------------------------------------------------------
    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = (
            environment()
            .get_template(template)
            .render(
                base=self.base,
                url=self.url,
                static=self.static,
                plotly_style_ids=self.assets.plotly_style_ids,
                user=self.session.name,
                csrf=self.sessions.csrf(self.session.sid),
                nav=self.nav,
                settings=self.ctx.settings,
                **context,
            )
        )
        return HTMLResponse(html, status, headers=NO_STORE)

    @staticmethod
    def json(payload: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(payload), status, media_type="application/json", headers=NO_STORE)

    def redirect(self, path: str, **params: Any) -> RedirectResponse:
        return RedirectResponse(self.url(path, **params), 303)

    # query parameters ---------------------------------------------------------------------------------
    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> str | None:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if raw not in options:
            raise ConsoleError(
                400, f"Bad value for {name}", f"{name} must be one of {', '.join(options)}; got {raw[:40]!r}."
            )
        return raw

    def number(self, name: str, low: float, high: float, default: float | None = None) -> float | None:
        raw = self.request.query_params.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConsoleError(400, f"Bad value for {name}", f"{name} must be a number; got {raw[:40]!r}.") from None
        if not low <= value <= high:
            raise ConsoleError(
                400, f"Bad value for {name}", f"{name} must be between {low:g} and {high:g}; got {value:g}."
            )
        return value

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        raw = self.request.query_params.get(name)
        if raw is None or raw.strip() == "":
            return default
        if not raw.strip().isdigit():
            raise ConsoleError(400, f"Bad value for {name}", f"{name} must be a whole number; got {raw[:40]!r}.")
        value = int(raw)
        if not low <= value <= high:
            raise ConsoleError(400, f"Bad value for {name}", f"{name} must be between {low} and {high}; got {value}.")
        return value

    def text(self, name: str, limit: int = 200) -> str | None:
        raw = self.request.query_params.get(name)
        if raw is None or not raw.strip():
            return None
        if len(raw) > limit:
            raise ConsoleError(400, f"Bad value for {name}", f"{name} is longer than {limit} characters.")
        return raw.strip()

    def field(self, name: str, limit: int, required: bool = True) -> str | None:
        """A text field of the posted form, stripped; a clear 400 when it is missing or too long."""
        raw = self.form.get(name) if self.form is not None else None
        if not isinstance(raw, str) or not raw.strip():
            if required:
                raise ConsoleError(400, f"Missing {name}", f"The form needs a {name}.")
            return None
        if len(raw) > limit:
            raise ConsoleError(400, f"{name.capitalize()} too long", f"The {name} is longer than {limit:,} characters.")
        return raw.strip()
