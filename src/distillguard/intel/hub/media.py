"""The TAXII 2.1 media types, content negotiation and the response that carries them.

Everything the hub answers, errors included, is ``application/taxii+json;version=2.1``: the OASIS client checks
that the answer's media type matches what it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

TAXII_21 = "application/taxii+json;version=2.1"
STIX_21 = "application/stix+json;version=2.1"
_TAXII = "application/taxii+json"
_WILDCARDS = frozenset({"*/*", "application/*"})


def _media_range(item: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` (lower case) and its parameters, from one item of an Accept or Content-Type header."""
    media, *params = item.split(";")
    options = {}
    for param in params:
        name, _, value = param.partition("=")
        options[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), options


def _is_taxii_21(media: str, options: dict[str, str]) -> bool:
    # No version parameter means the newest version the server speaks (TAXII 2.1, section 1.6.8).
    return media == _TAXII and options.get("version", "2.1") == "2.1"


def _weight(options: dict[str, str]) -> float:
    try:
        return float(options.get("q", "1"))
    except ValueError:
        return 1.0


def accepts_taxii(accept: str | None) -> bool:
    """Whether an Accept header admits TAXII 2.1 (no header, or a wildcard, does)."""
    if accept is None or not accept.strip():
        return True
    for item in accept.split(","):
        media, options = _media_range(item)
        if _weight(options) <= 0:
            continue
        if media in _WILDCARDS or _is_taxii_21(media, options):
            return True
    return False


def is_taxii_content(content_type: str | None) -> bool:
    """Whether a request body's Content-Type is TAXII 2.1 (what POST requires)."""
    if content_type is None:
        return False
    return _is_taxii_21(*_media_range(content_type))


def taxii_response(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status, dict(headers or {}), media_type=TAXII_21)


def taxii_json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return taxii_response(orjson.dumps(payload), status, headers)
