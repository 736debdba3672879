"""A minimal ASGI response for bodies already encoded as bytes (the hot path sends only these and SSE)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_JSON = (b"content-type", b"application/json")


class BytesResponse(Response):
    """Send ``body`` with ``status`` and ``headers``; skips Starlette's header normalisation (a Response
    subclass only so that Starlette's handlers accept it)."""

    def __init__(self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status
        self.extra_headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [_JSON, (b"content-length", str(len(self.body)).encode())]
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.extra_headers.items())
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})
