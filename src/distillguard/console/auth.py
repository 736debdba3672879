"""Console sessions: log in with an admin token, get a signed cookie that never holds the token.

- The cookie carries the admin token's public id, a random session id and an expiry, signed with HMAC-SHA256 under
  a key derived from the deployment secret; it is HttpOnly, SameSite=Strict, limited to the console's path, and
  Secure over HTTPS (or always, with ``console.cookie_secure``). Being stateless, it works across gateway workers
  and replicas that share the secret.
- Every request re-checks that the token still exists and is not revoked (cached ``console.token_recheck_s``), so
  revoking a token (``distillguard admin token revoke``) ends its sessions; the reviewer's name comes from there.
- Every POST carries a CSRF token derived from the session id (HMAC again), compared in constant time; the login
  form's comes from a short-lived cookie of its own.

Logging out clears the cookie in the browser; a copy of the cookie taken before stays valid until it expires or the
token is revoked (there is no server-side session list to strike it from).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from distillguard.config import ConsoleConfig
from distillguard.store import keys as keyfmt
from distillguard.store.schema import admin_tokens

COOKIE = "dg_console"
LOGIN_COOKIE = "dg_console_login"
LOGIN_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class Session:
    token_id: str
    sid: str
    expires: int  # epoch seconds
    name: str = ""  # the token holder's name, once checked


class Sessions:
    def __init__(self, engine: Engine, secret: bytes, config: ConsoleConfig) -> None:
        self._engine = engine
        self._key = hmac.new(secret, b"distillguard console sessions v1", hashlib.sha256).digest()
        self.config = config
        self._checked: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    # cookies ------------------------------------------------------------------------------------------
    def issue(self, token_id: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for an admin token that was just presented and checked: (cookie value, session)."""
        expires = int((now if now is not None else time.time()) + self.config.session_ttl_s)
        session = Session(token_id, secrets.token_urlsafe(18), expires)
        payload = f"{session.token_id}.{session.sid}.{session.expires}"
        return f"{payload}.{self._sign(payload)}", session

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds if its signature checks and it has not expired (no database involved)."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4:
            return None
        token_id, sid, expires, signature = parts
        if not hmac.compare_digest(self._sign(f"{token_id}.{sid}.{expires}"), signature):
            return None
        if not expires.isdigit() or int(expires) <= (now if now is not None else time.time()):
            return None
        return Session(token_id, sid, int(expires))

    # the admin token behind a session -------------------------------------------------------------------
    def holder(self, token_id: str) -> str | None:
        """The name on an admin token if it exists and is not revoked (looked up at most every token_recheck_s;
        blocking: call it from a thread)."""
        now = time.monotonic()
        with self._lock:
            cached = self._checked.get(token_id)
        if cached is not None and now - cached[1] < self.config.token_recheck_s:
            return cached[0]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(admin_tokens.c.name, admin_tokens.c.revoked_at).where(admin_tokens.c.token_id == token_id)
            ).first()
        name = str(row[0]) if row is not None and row[1] is None else None
        with self._lock:
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[token_id] = (name, now)
        return name

    def fresh(self, token_id: str) -> bool:
        """Whether the cached check of a token is recent enough to skip the lookup (no thread hop needed)."""
        with self._lock:
            cached = self._checked.get(token_id)
        return cached is not None and time.monotonic() - cached[1] < self.config.token_recheck_s

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._checked.pop(token_id, None)

    # CSRF -----------------------------------------------------------------------------------------------
    def csrf(self, sid: str) -> str:
        return self._sign(f"csrf.{sid}")

    def csrf_ok(self, sid: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf(sid), presented)

    @staticmethod
    def login_nonce() -> str:
        return secrets.token_urlsafe(18)


def token_id_of(presented: str) -> str | None:
    """The public id of a presented admin token (``dg-admin-<id>_...``), or None if it is not shaped like one."""
    return keyfmt.key_id_of(presented.strip(), keyfmt.ADMIN_PREFIX)
