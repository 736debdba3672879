"""Plain records the store hands out; nothing here touches a database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from distillguard.timefmt import rfc3339


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    org_id: str | None = None
    tier: str | None = None
    created_at: datetime | None = None
    verified: bool = False
    payment_fingerprint: str | None = None
    email_domain: str | None = None
    country: str | None = None
    # Per-account limit overrides: {"requests": [...], "tokens": [...]} replacing the tier's account limits.
    limits_override: dict[str, list[str]] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """The accounts-file shape documented in docs/events.md."""
        out = asdict(self)
        out["created_at"] = rfc3339(self.created_at) if self.created_at else None
        return out


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    account_id: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
