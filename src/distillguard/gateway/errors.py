"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from distillguard.gateway.responses import BytesResponse

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_exceeded",
    499: "client_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout",
}


def error_body(status: int, message: str, code: str | None, param: str | None = None, kind: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": kind or _TYPES.get(status, "api_error"), "param": param, "code": code}}
    )


class GatewayError(Exception):
    """A refusal or failure to answer with an OpenAI-shaped error; ``code`` also goes to the event log."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None,
        param: str | None = None,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind
        self.headers = dict(headers or {})

    def response(self, extra_headers: Mapping[str, str] | None = None) -> BytesResponse:
        headers = {**self.headers, **(extra_headers or {})}
        return BytesResponse(
            error_body(self.status, self.message, self.code, self.param, self.kind), self.status, headers
        )


def invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> GatewayError:
    return GatewayError(400, message, code, param)
