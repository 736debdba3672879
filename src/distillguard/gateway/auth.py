"""Who is calling: the bearer key checked against its keyed hash, with a short-lived cache per key id."""

from __future__ import annotations

import time
from dataclasses import dataclass

from distillguard.config import LimitsConfig
from distillguard.gateway.errors import GatewayError
from distillguard.limits import RuleSet, resolve_rules
from distillguard.store import StateStore
from distillguard.store import keys as keyfmt
from distillguard.store.models import Account, ApiKey

_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Principal:
    key: ApiKey
    account: Account
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    key_hash: str | None
    principal: Principal | None


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, "invalid_api_key")


class Authenticator:
    """Checks ``Authorization: Bearer sk-dg-...``; every check recomputes the HMAC and compares in constant time.

    Records are cached per key id for ``ttl_s`` seconds, so a revoked key stops working within that time
    without a store read per call.
    """

    def __init__(self, store: StateStore, limits: LimitsConfig, secret: bytes, ttl_s: float) -> None:
        self._store = store
        self._limits = limits
        self._secret = secret
        self._ttl = ttl_s
        self._cache: dict[str, _Entry] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        scheme, _, presented = authorization.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise _unauthorized("Malformed Authorization header: expected 'Bearer YOUR_KEY'.")
        key_id = keyfmt.key_id_of(presented)
        if key_id is None:
            raise _unauthorized("Incorrect API key provided.")
        entry = self._lookup(key_id)
        if (
            entry.key_hash is None
            or entry.principal is None
            or not keyfmt.key_matches(self._secret, presented, entry.key_hash)
        ):
            raise _unauthorized(f"Incorrect API key provided: key {key_id} is unknown or revoked.")
        return entry.principal

    def invalidate(self, key_id: str | None = None) -> None:
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    def _lookup(self, key_id: str) -> _Entry:
        now = time.monotonic()
        entry = self._cache.get(key_id)
        if entry is not None and entry.expires > now:
            return entry
        record = self._store.lookup_key(key_id)
        if record is None or not record.key.active:
            entry = _Entry(now + self._ttl, None, None)
        else:
            principal = Principal(record.key, record.account, resolve_rules(self._limits, key_id, record.account))
            entry = _Entry(now + self._ttl, record.key_hash, principal)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key_id] = entry
        return entry
