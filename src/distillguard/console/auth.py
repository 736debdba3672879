"""Console sessions: log in with an admin token, get a signed cookie that never holds the token.

- The cookie carries the admin token's public id, a random session id and an expiry, signed with HMAC-SHA256 under
  a key derived from the deployment secret; it is HttpOnly, SameSite=Strict, limited to the console's path, and
  Secure over HTTPS (or always, with ``console.cookie_secure``). Being stateless, it works across gateway workers
  and replicas that share the secret.
- Every request re-checks that the token still exists and is not revoked (cached ``console.token_recheck_s``), so
  revoking a token (``distillguard admin token revoke``) ends its sessions; the reviewer's name comes from there.
- Every POST carries a CSRF token derived from the session id (HMAC again), compared in constant time; the login
  form's comes from a short-lived cookie of its own.

- Logging out clears the cookie and records the session as ended (``console_logouts``): a copy of the cookie taken
  before is refused from then on, by this process at once and by other workers and replicas within
  ``console.token_recheck_s`` (each session's check is cached that long, like the token's). Ended sessions are
  pruned once they would have expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from distillguard.config import ConsoleConfig
from distillguard.store import keys as keyfmt
from distillguard.store.schema import admin_tokens, console_logouts
from distillguard.timefmt import utcnow

T = TypeVar("T")
# No cached value is final (see Sessions._cached).
_NO_FINAL = object()

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
        # Session id -> (ended by a logout, when checked).
        self._ended: dict[str, tuple[bool, float]] = {}
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

    # the admin token behind a session, and whether it was logged out ---------------------------------------
    def check(self, session: Session) -> str | None:
        """The name on the session's admin token if the token exists and is not revoked and the session was not
        logged out (each looked up at most every token_recheck_s; blocking: call it from a thread)."""
        name = self.holder(session.token_id)
        return None if name is None or self._was_ended(session.sid) else name

    def recently_checked(self, session: Session) -> bool:
        """Whether :meth:`check` can answer from its cache (no thread hop needed)."""
        now = time.monotonic()
        recheck = self.config.token_recheck_s
        with self._lock:
            token, ended = self._checked.get(session.token_id), self._ended.get(session.sid)
        return token is not None and ended is not None and now - token[1] < recheck and now - ended[1] < recheck

    def holder(self, token_id: str) -> str | None:
        """The name on an admin token if it exists and is not revoked (cached token_recheck_s; blocking)."""

        def lookup() -> str | None:
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(admin_tokens.c.name, admin_tokens.c.revoked_at).where(admin_tokens.c.token_id == token_id)
                ).first()
            return str(row[0]) if row is not None and row[1] is None else None

        return self._cached(self._checked, token_id, lookup)

    def _was_ended(self, sid: str) -> bool:
        def lookup() -> bool:
            with self._engine.connect() as conn:
                return (
                    conn.execute(select(console_logouts.c.sid).where(console_logouts.c.sid == sid)).first() is not None
                )

        # An ended session stays ended: only "not ended" is looked up again.
        return self._cached(self._ended, sid, lookup, final=True)

    def _cached(
        self, cache: dict[str, tuple[T, float]], key: str, lookup: Callable[[], T], final: object = _NO_FINAL
    ) -> T:
        """``cache[key]`` if checked within token_recheck_s (or if it is the ``final`` value, which never changes),
        else ``lookup()``, remembered (the cache is cleared beyond 10,000 entries)."""
        now = time.monotonic()
        with self._lock:
            cached = cache.get(key)
        if cached is not None and (cached[0] is final or now - cached[1] < self.config.token_recheck_s):
            return cached[0]
        value = lookup()
        self._remember(cache, key, value, now)
        return value

    def _remember(self, cache: dict[str, tuple[T, float]], key: str, value: T, now: float) -> None:
        with self._lock:
            if len(cache) > 10_000:
                cache.clear()
            cache[key] = (value, now)

    def end(self, session: Session) -> None:
        """Log a session out everywhere: recorded in the store (blocking), refused here at once."""
        self._remember(self._ended, session.sid, True, time.monotonic())
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(delete(console_logouts).where(console_logouts.c.expires_at < now))
            try:
                with conn.begin_nested():
                    conn.execute(
                        console_logouts.insert().values(
                            sid=session.sid,
                            token_id=session.token_id,
                            at=now,
                            expires_at=datetime.fromtimestamp(session.expires, UTC),
                        )
                    )
            except IntegrityError:
                pass  # ended already (a second logout from a copy of the cookie)

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
