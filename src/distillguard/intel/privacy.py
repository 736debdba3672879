"""What may leave a deployment: identifiers as keyed HMACs, addresses as prefixes, nothing raw by default.

Members of a sharing group hold one secret, the *group key*. An identifier (an account id, an org id, a payment
fingerprint, an e-mail domain, a client fingerprint) leaves as ``HMAC-SHA256(group key, kind || 0x00 || value)``:
a member who sees the same identifier computes the same value and matches, without either side revealing it to
anyone outside the group (or to a hub that relays the bundle). Values are normalised first (trimmed, lower-cased)
so that ``Example.COM`` and ``example.com`` match. The kind is part of the input, so an e-mail domain can never
match an org id that happens to be spelt the same.

What a holder of the key can learn is documented in docs/intel.md: a keyed hash is a commitment, not encryption;
whoever holds the key can confirm a *guess* (is card fingerprint X in this campaign?), so the key is shared only
inside the group, and identifiers that are guessable from a small space (e-mail domains) are weaker than random
ones (payment fingerprints, account ids).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

IdentifierKind = Literal["account_id", "org_id", "payment_fingerprint", "email_domain", "client_fingerprint"]
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = (
    "account_id",
    "org_id",
    "payment_fingerprint",
    "email_domain",
    "client_fingerprint",
)
# The prefix lengths addresses are cut to: a /24 or /48 names a network (a proxy pool, a hosting range), not a host.
IPV4_PREFIX = 24
IPV6_PREFIX = 48
MIN_KEY_BYTES = 32


class GroupKeyError(ValueError):
    """The group key is missing or too short to be a secret."""


@dataclass(frozen=True)
class GroupKey:
    """The sharing group's HMAC key. ``key_id`` names it in bundles (so members can rotate keys) and is a hash of
    the key under a fixed label, which reveals nothing about the key itself."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise GroupKeyError(f"the group key must be at least {MIN_KEY_BYTES} bytes (it is {len(self.secret)})")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"distillguard group key id\x00" + self.secret).hexdigest()[:16]

    def keyed(self, kind: IdentifierKind, value: str) -> str:
        """The keyed hash of one identifier, as 64 hex digits."""
        message = kind.encode() + b"\x00" + normalise(value).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def derive(self, label: str) -> bytes:
        """A sub-key for one purpose (template signatures), so no two uses share a key."""
        return hmac.new(self.secret, b"distillguard derive\x00" + label.encode(), hashlib.sha256).digest()

    @classmethod
    def from_text(cls, text: str) -> GroupKey:
        """A key given as hex (64+ digits) or as any passphrase of 32+ bytes."""
        text = text.strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = text.encode()
        return cls(raw if len(raw) >= MIN_KEY_BYTES else text.encode())

    @classmethod
    def load(cls, path: Path) -> GroupKey:
        try:
            return cls.from_text(path.read_text())
        except FileNotFoundError:
            raise GroupKeyError(f"no group key at {path} (make one with `distillguard intel keygen`)") from None

    @staticmethod
    def generate() -> str:
        """A new group key, as 64 hex digits: made by one member and handed to the others out of band."""
        return os.urandom(32).hex()


def normalise(value: str) -> str:
    return value.strip().lower()


def ip_prefix(address: str | None) -> str | None:
    """The network an address belongs to, as a CIDR (/24 for IPv4, /48 for IPv6); None for anything else."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    length = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{length}", strict=False))
