"""Who is calling: a member's name and secret by HTTP Basic (what taxii2-client sends), or the secret alone as a
bearer token. The secret is checked against its keyed hash in constant time and never logged or echoed."""

from __future__ import annotations

import base64
import binascii

from distillguard.intel.hub.errors import unauthorized
from distillguard.intel.hub.store import HubStore

_HOW = "Authenticate with HTTP Basic (member name and secret) or 'Authorization: Bearer <secret>'."


def credentials(header: str | None) -> tuple[str | None, str]:
    """``(member name, secret)`` of an Authorization header; the name is None for a bearer token."""
    if not header:
        raise unauthorized(f"No credentials. {_HOW}")
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return None, value
    if scheme == "basic":
        try:
            name, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if sep:
            return name, secret
    raise unauthorized(f"Malformed Authorization header. {_HOW}")


def authenticate(store: HubStore, header: str | None) -> str:
    """The calling member's name; 401 with a Basic challenge otherwise."""
    name, secret = credentials(header)
    member = store.authenticate(name, secret)
    if member is None:
        raise unauthorized(
            "Unknown member or wrong secret (a hub operator issues them: `distillguard hub member add`)."
        )
    return member
