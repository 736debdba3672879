"""API key format, generation and keyed hashing.

A key reads ``sk-dg-<key_id>_<secret>``: the 12-hex-digit ``key_id`` is public (it is logged and shown in
``keys list``) and finds the record; the whole key is checked against its stored HMAC-SHA256 in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sk-dg-"
# Admin tokens (reviewers, the admin API) have the same shape under their own prefix.
ADMIN_PREFIX = "dg-admin-"
KEY_ID_LEN = 12


def new_key(prefix: str = PREFIX) -> tuple[str, str]:
    """Return ``(key_id, plaintext_key)``; the plaintext is shown once and never stored."""
    key_id = secrets.token_hex(KEY_ID_LEN // 2)
    return key_id, f"{prefix}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(presented: str, prefix: str = PREFIX) -> str | None:
    """The key id inside a presented key, or None if it is not shaped like one of ours."""
    secret_start = len(prefix) + KEY_ID_LEN + 1
    if len(presented) <= secret_start or not presented.startswith(prefix):
        return None
    if presented[secret_start - 1] != "_":
        return None
    key_id = presented[len(prefix) : secret_start - 1]
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id


def hash_key(secret: bytes, presented: str) -> str:
    return hmac.new(secret, presented.encode(), hashlib.sha256).hexdigest()


def key_matches(secret: bytes, presented: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(secret, presented), stored_hash)
