"""Fingerprints of the client's HTTP stack: the order of its request headers, and a TLS fingerprint (JA3/JA4)
when a trusted fronting proxy forwards one.

Each HTTP library writes its headers in an order of its own (the openai SDK, curl, a Go script, a browser), and
that order survives rotating proxies and fresh API keys; a campaign driving thousands of accounts from one
harvesting script shows one header order across all of them. Common orders (the official SDKs') are shared by
millions of honest callers, so clustering weighs a shared fingerprint by its rarity and never convicts on it
alone (docs/clusters.md).
"""

from __future__ import annotations

import hashlib
import re

# Headers that proxies between the client and us add or rewrite: not the client's own.
_PROXY_ADDED = (b"x-forwarded-", b"forwarded", b"x-real-ip", b"via", b"cdn-loop", b"cf-", b"x-amzn-", b"true-client-ip")
# What a JA3 (32 hex digits), JA3 string or JA4 (t13d1516h2_8daaf6152771_b186095e22b6) fingerprint looks like.
_TLS_VALUE = re.compile(r"[A-Za-z0-9_.,:\-]{8,256}")


def header_order(names: list[bytes], skip: bytes | None = None) -> str:
    """``ho:`` + 16 hex digits naming the sequence of header names (values never enter it).

    ``names`` are the names as the server received them (ASGI lowercases them, in arrival order); headers added by
    proxies and ``skip`` (the TLS-fingerprint header) are left out, so the same client gives the same fingerprint
    directly and through a fronting proxy.
    """
    kept = [n for n in names if n != skip and not n.startswith(_PROXY_ADDED)]
    return "ho:" + hashlib.blake2b(b"\n".join(kept), digest_size=8).hexdigest()


def tls_fingerprint(value: str | None) -> str | None:
    """A forwarded TLS fingerprint if it looks like one, else None (a malformed header is not evidence)."""
    if value is None:
        return None
    value = value.strip()
    return value if _TLS_VALUE.fullmatch(value) else None
