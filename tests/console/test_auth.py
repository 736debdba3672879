"""Who may see the console: admin tokens in, signed session cookies out, revocation, CSRF, and the headers that keep
the pages to themselves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from distillguard.console.auth import COOKIE, LOGIN_COOKIE, Sessions
from distillguard.console.pages.login import safe_next
from distillguard.store.schema import console_logouts
from tests.console.conftest import Console
from tests.console.world import build


def test_without_a_session_pages_redirect_to_login_and_the_api_answers_401(console: Console) -> None:
    page = console.client.get("/console/accounts?sort=calls")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Faccounts%3Fsort%3Dcalls"
    api = console.client.get("/console/api/accounts")
    assert api.status_code == 401
    assert api.json()["error"]["type"] == "console_error"
    # The bare path leads into the console.
    assert console.client.get("/console").headers["location"] == "/console/"


def test_a_bad_token_is_refused_and_a_good_one_gives_a_cookie_without_the_token(console: Console) -> None:
    form = console.client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    bad = console.client.post("/console/login", data={"token": "dg-admin-0123456789ab_nope", "csrf": csrf})
    assert bad.status_code == 401
    assert "not a valid admin token" in bad.text
    assert COOKIE not in bad.cookies

    good = console.client.post("/console/login", data={"token": console.world.token, "csrf": csrf})
    assert good.status_code == 303 and good.headers["location"] == "/console/"
    header = _cookie_header(good, COOKIE)
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/console/" in header
    assert "Secure" not in header  # plain HTTP here; see the next test
    secret_part = console.world.token.split("_", 1)[1]
    assert secret_part not in header and console.world.token not in header
    assert console.client.get("/console/").status_code == 200


def test_cookies_are_secure_over_https_or_when_configured(console: Console, tmp_path: Path) -> None:
    console.client.base_url = "https://testserver"
    console.login()
    assert "Secure" in _cookie_header(console.client.get("/console/login"), LOGIN_COOKIE)

    world = build(tmp_path / "behind-proxy", cookie_secure=True)  # TLS ends at a proxy: requests arrive as http
    try:
        assert "Secure" in _cookie_header(Console(world).client.get("/console/login"), LOGIN_COOKIE)
    finally:
        world.ctx.close()


def _cookie_header(reply: Any, name: str) -> str:
    return str(next(h for h in reply.headers.get_list("set-cookie") if h.startswith(name + "=")))


def test_login_needs_its_form_token(console: Console) -> None:
    console.client.get("/console/login")
    reply = console.client.post("/console/login", data={"token": console.world.token, "csrf": "forged"})
    assert reply.status_code == 403
    assert COOKIE not in reply.cookies


def test_revoking_the_token_ends_its_sessions(signed_in: Console) -> None:
    assert signed_in.client.get("/console/accounts").status_code == 200
    book = signed_in.world.ctx.book
    (token,) = [t for t in book.admin_tokens() if t["name"] == "alice"]
    book.revoke_admin_token(token["token_id"], "operator:tests")
    # token_recheck_s is 0 in these tests: the very next request sees the revocation.
    assert signed_in.client.get("/console/accounts").status_code == 303
    assert signed_in.client.get("/console/api/accounts").status_code == 401


def test_a_tampered_or_expired_cookie_is_no_session(signed_in: Console) -> None:
    cookie = signed_in.client.cookies[COOKIE]
    token_id, sid, expires, signature = cookie.split(".")
    sessions = Sessions(signed_in.world.ctx.engine, signed_in.world.ctx.secret, signed_in.world.ctx.settings.console)
    assert sessions.read(cookie) is not None
    assert sessions.read(f"{token_id}.{sid}.{int(expires) + 3600}.{signature}") is None  # extended by hand
    assert sessions.read(f"{'0' * 12}.{sid}.{expires}.{signature}") is None  # another token's id
    assert sessions.read(cookie, now=int(expires) + 1) is None  # expired
    signed_in.client.cookies.clear()
    signed_in.client.cookies.set(COOKIE, f"{token_id}.{sid}.{int(expires) + 3600}.{signature}")
    assert signed_in.client.get("/console/").status_code == 303


def test_every_post_needs_the_sessions_csrf_token(signed_in: Console) -> None:
    case = signed_in.world.case_id
    no_token = signed_in.client.post(f"/console/review/{case}/escalate", data={"reason": "senior look"})
    assert no_token.status_code == 403
    assert "Form expired" in no_token.text
    wrong = signed_in.client.post(f"/console/review/{case}/escalate", data={"reason": "senior look", "csrf": "x" * 64})
    assert wrong.status_code == 403
    assert signed_in.world.ctx.book.case(case).status == "open"  # nothing happened
    ok = signed_in.client.post(
        f"/console/review/{case}/escalate", data={"reason": "senior look", "csrf": signed_in.csrf("/console/review")}
    )
    assert ok.status_code == 303
    assert signed_in.world.ctx.book.case(case).status == "escalated"


def test_logout_clears_the_cookie_and_ends_the_session_everywhere(signed_in: Console) -> None:
    copy = signed_in.client.cookies[COOKIE]
    reply = signed_in.client.post("/console/logout", data={"csrf": signed_in.csrf("/console/")})
    assert reply.status_code == 303 and reply.headers["location"] == "/console/login"
    assert any(h.startswith(COOKIE + '=""') or "Max-Age=0" in h for h in reply.headers.get_list("set-cookie"))
    assert signed_in.client.get("/console/").status_code == 303
    # A copy of the cookie taken before the logout is refused, here and by any other process on the same store.
    signed_in.client.cookies.set(COOKIE, copy)
    assert signed_in.client.get("/console/").status_code == 303
    assert signed_in.client.get("/console/api/accounts").status_code == 401
    ctx = signed_in.world.ctx
    elsewhere = Sessions(ctx.engine, ctx.secret, ctx.settings.console)
    session = elsewhere.read(copy)
    assert session is not None and elsewhere.check(session) is None
    # Another session of the same token is not affected.
    signed_in.client.cookies.clear()
    signed_in.login()
    assert signed_in.client.get("/console/").status_code == 200


def test_ended_sessions_are_pruned_once_they_would_have_expired(signed_in: Console) -> None:
    ctx = signed_in.world.ctx
    sessions = Sessions(ctx.engine, ctx.secret, ctx.settings.console)
    _cookie, old = sessions.issue("t1", now=0)  # expired long ago
    _cookie, current = sessions.issue("t1")
    sessions.end(old)
    sessions.end(current)
    sessions.end(current)  # twice: still one row
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(console_logouts.c.sid)).scalars().all()
    assert rows == [current.sid]


def test_pages_carry_a_strict_content_security_policy(signed_in: Console) -> None:
    for path in ("/console/", "/console/login", "/console/nowhere", "/console/static/console.css"):
        headers = signed_in.client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert signed_in.client.get("/console/").headers["cache-control"] == "no-store"


def test_after_login_only_console_paths_are_followed() -> None:
    class Request:
        scope = {"root_path": "/console"}

    request = Request()
    assert safe_next(request, "/console/accounts?sort=calls") == "/console/accounts?sort=calls"  # type: ignore[arg-type]
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/models", "/console/\\evil", None):
        assert safe_next(request, target) == "/console/"  # type: ignore[arg-type]
