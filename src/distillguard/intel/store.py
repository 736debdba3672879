"""Received intel on the state store: every verified object version as received, and where each source was read to.

Objects are verified *before* they are stored (a forged or altered object never lands) and kept verbatim, so the
feed can be rebuilt at any time and a reviewer can see exactly what a partner sent. Re-receiving a version is a
no-op, which makes pulls idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from distillguard.intel.signing import SignatureError, verify
from distillguard.intel.tlp import BY_ID as TLP_MARKINGS
from distillguard.intel.vocabulary import DEFINITION_IDS
from distillguard.store.schema import intel_cursors, intel_objects
from distillguard.timefmt import utcnow


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    # Shared constants (TLP markings, the extension definitions): known, not stored.
    known: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "known": self.known,
            "rejected": [{"id": i, "reason": r} for i, r in self.rejected],
        }


def version_of(obj: dict[str, Any]) -> str:
    return str(obj.get("modified") or obj.get("created") or "")


class IntelStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ingest(self, objects: Iterable[Any], keys: dict[str, Ed25519PublicKey]) -> IngestResult:
        """Verify each object under ``keys`` (identity id -> public key) and store the ones that check."""
        result = IngestResult()
        now = utcnow()
        with self.engine.begin() as conn:
            for obj in objects:
                if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or "type" not in obj:
                    result.rejected.append((str(obj.get("id") if isinstance(obj, dict) else "?"), "not an object"))
                    continue
                if obj["id"] in DEFINITION_IDS or obj["id"] in TLP_MARKINGS:
                    result.known += 1
                    continue
                try:
                    signer = verify(obj, keys)
                except SignatureError as exc:
                    result.rejected.append((obj["id"], str(exc)))
                    continue
                row = {
                    "id": obj["id"],
                    "version": version_of(obj),
                    "type": str(obj["type"]),
                    "signer": signer,
                    "received_at": now,
                    "body": obj,
                }
                try:
                    with conn.begin_nested():
                        conn.execute(intel_objects.insert().values(**row))
                except IntegrityError:
                    result.duplicates += 1
                else:
                    result.accepted += 1
        return result

    def objects(self, types: Iterable[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(signer, object) of every stored version."""
        query = select(intel_objects.c.signer, intel_objects.c.body)
        if types is not None:
            query = query.where(intel_objects.c.type.in_(list(types)))
        with self.engine.connect() as conn:
            for signer, body in conn.execute(query):
                yield str(signer), body

    def cursor(self, source: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(intel_cursors.c.added_after).where(intel_cursors.c.source == source)
            ).scalar_one_or_none()
        return value

    def set_cursor(self, source: str, added_after: str) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                intel_cursors.update()
                .where(intel_cursors.c.source == source)
                .values(added_after=added_after, updated_at=utcnow())
            )
            if updated.rowcount == 0:
                conn.execute(intel_cursors.insert().values(source=source, added_after=added_after, updated_at=utcnow()))
