"""Client fingerprints: header order (proxy-added headers left out) and forwarded TLS fingerprints."""

from __future__ import annotations

import pytest

from distillguard.gateway.fingerprint import header_order, tls_fingerprint

SDK = [b"host", b"accept-encoding", b"connection", b"accept", b"content-type", b"user-agent", b"authorization"]


def test_the_order_of_names_is_the_fingerprint() -> None:
    assert header_order(SDK) == header_order(list(SDK))
    assert header_order(SDK) != header_order([SDK[1], SDK[0], *SDK[2:]])
    assert header_order(SDK).startswith("ho:") and len(header_order(SDK)) == 3 + 16


def test_headers_added_by_proxies_and_the_tls_header_are_left_out() -> None:
    proxied = [*SDK[:3], b"x-forwarded-for", b"x-real-ip", *SDK[3:], b"via", b"x-ja3", b"forwarded"]
    assert header_order(proxied, skip=b"x-ja3") == header_order(SDK)
    assert header_order(proxied) != header_order(SDK)  # the TLS header counts unless it is named


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("e7d705a3286e19ea42f587b344ee6865", True),  # JA3
        (" t13d1516h2_8daaf6152771_b186095e22b6 ", True),  # JA4, trimmed
        ("771,4865-4866,0-23-65281,29-23,0", True),  # a JA3 string
        ("<script>", False),
        ("short", False),
        ("x" * 300, False),
        (None, False),
    ],
)
def test_forwarded_tls_fingerprints_are_validated(value: str | None, kept: bool) -> None:
    out = tls_fingerprint(value)
    assert (out is not None) is kept
    if kept:
        assert value is not None and out == value.strip()
