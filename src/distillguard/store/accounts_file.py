"""The accounts file (JSONL, docs/events.md): one account per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from distillguard.store.models import Account
from distillguard.timefmt import parse_rfc3339


def account_from_json(obj: dict[str, object]) -> Account:
    account_id = obj.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        raise ValueError("account_id is required")
    created = obj.get("created_at")
    override = obj.get("limits_override")

    def text(name: str) -> str | None:
        value = obj.get(name)
        return None if value is None else str(value)

    return Account(
        account_id=account_id,
        org_id=text("org_id"),
        tier=text("tier"),
        created_at=parse_rfc3339(created) if isinstance(created, str) else None,
        verified=bool(obj.get("verified") or False),
        payment_fingerprint=text("payment_fingerprint"),
        email_domain=text("email_domain"),
        country=text("country"),
        limits_override=override if isinstance(override, dict) else None,
    )


def read_accounts(path: Path) -> Iterator[Account]:
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                yield account_from_json(obj)
            except (orjson.JSONDecodeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: not a valid account: {exc}") from exc
