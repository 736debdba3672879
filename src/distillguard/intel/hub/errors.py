"""TAXII error messages (TAXII 2.1, section 3.6.1): what went wrong and what to do, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from distillguard.intel.hub.media import taxii_json

REALM = 'Basic realm="distillguard-hub"'


class TaxiiError(Exception):
    """A request the hub refuses; ``response()`` is the TAXII error message for it."""

    def __init__(self, status: int, title: str, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {title}: {description}")
        self.status = status
        self.title = title
        self.description = description
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body = {"title": self.title, "description": self.description, "http_status": str(self.status)}
        return taxii_json(body, self.status, self.headers)


def bad_request(description: str) -> TaxiiError:
    return TaxiiError(400, "Bad request", description)


def unauthorized(description: str) -> TaxiiError:
    return TaxiiError(401, "Authentication required", description, {"WWW-Authenticate": REALM})


def forbidden(description: str) -> TaxiiError:
    return TaxiiError(403, "Forbidden", description)


def not_found(description: str) -> TaxiiError:
    return TaxiiError(404, "Not found", description)


def not_acceptable() -> TaxiiError:
    return TaxiiError(
        406,
        "Not acceptable",
        "This hub answers only in application/taxii+json;version=2.1: send that (or */*) in the Accept header.",
    )


def too_large(limit: int) -> TaxiiError:
    return TaxiiError(
        413,
        "Request too large",
        f"The body exceeds this API root's max_content_length of {limit} bytes: send fewer objects per request.",
    )


def unsupported_media_type(got: str | None) -> TaxiiError:
    shown = "none" if not got else repr(got[:80])
    return TaxiiError(
        415,
        "Unsupported media type",
        f"POST a TAXII envelope with Content-Type: application/taxii+json;version=2.1 (got {shown}).",
    )
