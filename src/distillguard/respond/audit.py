"""The audit trail's hash chain: each entry's hash covers its content and the previous entry's hash.

Entries are only ever appended (no API updates or deletes them); the chain makes an edit made behind the API's
back (in the database itself) visible: ``distillguard review audit --verify`` recomputes every hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from distillguard.timefmt import epoch_us, rfc3339

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str  # "system:detector", "reviewer:<name>", "customer:<account>", "operator:<name>"
    action: str
    case_id: str | None
    account_id: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": rfc3339(self.at),
            "actor": self.actor,
            "action": self.action,
            "case_id": self.case_id,
            "account_id": self.account_id,
            "detail": self.detail,
            "hash": self.hash,
        }


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    case_id: str | None,
    account_id: str | None,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    body = orjson.dumps(
        [seq, epoch_us(at), actor, action, case_id, account_id, detail, prev_hash], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(body).hexdigest()


def first_broken(entries: list[AuditEntry], prev_hash: str = GENESIS) -> int | None:
    """The seq of the first entry whose hash or link does not check out, or None when the chain is whole."""
    for e in entries:
        expected = entry_hash(e.seq, e.at, e.actor, e.action, e.case_id, e.account_id, e.detail, prev_hash)
        if e.prev_hash != prev_hash or e.hash != expected:
            return e.seq
        prev_hash = e.hash
    return None
