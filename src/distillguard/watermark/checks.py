"""Watermark and provenance checks an analyst ran, kept in the state store's ``checks`` table.

The CLI (``watermark detect --record``, ``provenance test --record``), the admin API and the console record what they
found here, so the console can list it and an evidence pack carries it with its p-value. A check is about a subject:
an account, a campaign (cluster id), a suspect model, or a bare text.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import Any, Literal, get_args

from sqlalchemy import Engine, insert, select

from distillguard.store.chunks import chunks
from distillguard.store.schema import checks
from distillguard.timefmt import as_utc, rfc3339, utcnow

CheckKind = Literal["watermark", "provenance"]
SubjectKind = Literal["account", "campaign", "model", "text"]
KINDS: tuple[str, ...] = get_args(CheckKind)
SUBJECT_KINDS: tuple[str, ...] = get_args(SubjectKind)
# The widths of the columns (schema.py): checked here so SQLite and PostgreSQL give the same answer.
MAX_SUBJECT_ID = 200
MAX_ACTOR = 400
MAX_LIST = 1000


class CheckError(ValueError):
    """A check that cannot be recorded as given (unknown kind, malformed subject)."""


def new_check_id() -> str:
    """``chk_`` and 12 hex digits."""
    return "chk_" + secrets.token_hex(6)


def parse_subject(text: str) -> tuple[str, str]:
    """``account:ID``, ``campaign:ID``, ``model:NAME`` or ``text:LABEL`` as (kind, id)."""
    kind, sep, ident = text.partition(":")
    kind = kind.strip().lower()
    ident = ident.strip()
    if not sep or kind not in SUBJECT_KINDS or not ident:
        raise CheckError(
            f"subject {text!r} is not one of {', '.join(k + ':ID' for k in SUBJECT_KINDS)} (e.g. account:acme)"
        )
    if len(ident) > MAX_SUBJECT_ID:
        raise CheckError(f"subject id is longer than {MAX_SUBJECT_ID} characters")
    return kind, ident


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity (PostgreSQL's json type refuses them): such a float is stored as null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def record_check(
    engine: Engine,
    *,
    kind: str,
    subject_kind: str | None,
    subject_id: str | None,
    actor: str,
    detected: bool,
    p_value: float | None,
    result: dict[str, Any],
) -> str:
    """Store one check and return its id (``chk_`` + 12 hex).

    ``result`` is the detector's full answer (``Detection.to_json()`` or ``ProvenanceReport.to_json()``)."""
    if kind not in KINDS:
        raise CheckError(f"check kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if (subject_kind is None) != (subject_id is None):
        raise CheckError("a subject needs both a kind and an id")
    if subject_kind is not None and subject_kind not in SUBJECT_KINDS:
        raise CheckError(f"subject kind must be one of {', '.join(SUBJECT_KINDS)}, not {subject_kind!r}")
    if subject_id is not None and not 0 < len(subject_id) <= MAX_SUBJECT_ID:
        raise CheckError(f"subject id must be 1 to {MAX_SUBJECT_ID} characters")
    if not 0 < len(actor) <= MAX_ACTOR:
        raise CheckError(f"actor must be 1 to {MAX_ACTOR} characters")
    check_id = new_check_id()
    with engine.begin() as conn:
        conn.execute(
            insert(checks).values(
                check_id=check_id,
                kind=kind,
                subject_kind=subject_kind,
                subject_id=subject_id,
                at=utcnow(),
                actor=actor,
                detected=bool(detected),
                p_value=_finite(float(p_value)) if p_value is not None else None,
                result=_finite(result),
            )
        )
    return check_id


def list_checks(
    engine: Engine, *, subject_id: str | None = None, kind: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest checks first, optionally about one subject id and of one kind.

    Each is ``{"check_id", "kind", "subject": {"kind", "id"} | None, "at" (RFC 3339), "actor", "detected",
    "p_value", "result"}``."""
    if kind is not None and kind not in KINDS:
        raise CheckError(f"check kind must be one of {', '.join(KINDS)}, not {kind!r}")
    query = select(checks).order_by(checks.c.at.desc(), checks.c.check_id).limit(max(1, min(limit, MAX_LIST)))
    if subject_id is not None:
        query = query.where(checks.c.subject_id == subject_id)
    if kind is not None:
        query = query.where(checks.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_check(row._mapping) for row in rows]


def checks_about(engine: Engine, subject_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every check about any of ``subject_ids`` (an evidence pack's: the campaign and its members), oldest first."""
    found: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for part in chunks(sorted(set(subject_ids))):
            query = select(checks).where(checks.c.subject_id.in_(list(part)))
            found.extend(_check(row._mapping) for row in conn.execute(query))
    return sorted(found, key=lambda c: (c["at"], c["check_id"]))


def _check(m: Any) -> dict[str, Any]:
    subject = {"kind": m["subject_kind"], "id": m["subject_id"]} if m["subject_id"] is not None else None
    return {
        "check_id": m["check_id"],
        "kind": m["kind"],
        "subject": subject,
        "at": rfc3339(as_utc(m["at"])),
        "actor": m["actor"],
        "detected": bool(m["detected"]),
        "p_value": m["p_value"],
        "result": m["result"],
    }
