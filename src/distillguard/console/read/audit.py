"""The newest entries of the audit trail, of everything, one account or one case (the trail's own indexes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from distillguard.store.schema import audit_log
from distillguard.timefmt import as_utc


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    action: str
    case_id: str | None
    account_id: str | None
    detail: dict[str, Any]


def recent_entries(
    engine: Engine,
    limit: int,
    *,
    account_id: str | None = None,
    case_id: str | None = None,
    action_prefix: str | None = None,
) -> list[Entry]:
    """Up to ``limit`` entries, newest first."""
    query = select(
        audit_log.c.seq,
        audit_log.c.at,
        audit_log.c.actor,
        audit_log.c.action,
        audit_log.c.case_id,
        audit_log.c.account_id,
        audit_log.c.detail,
    ).order_by(audit_log.c.seq.desc())
    if account_id is not None:
        query = query.where(audit_log.c.account_id == account_id)
    if case_id is not None:
        query = query.where(audit_log.c.case_id == case_id)
    if action_prefix is not None:
        query = query.where(audit_log.c.action.startswith(action_prefix, autoescape=True))
    with engine.connect() as conn:
        return [
            Entry(int(seq), as_utc(at), actor, action, case, account, dict(detail or {}))
            for seq, at, actor, action, case, account, detail in conn.execute(query.limit(limit))
        ]
