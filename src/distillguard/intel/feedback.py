"""What a member sends back about a partner's indicator: a sighting (we saw it too) or a false-positive report.

Both are STIX objects created and signed by us. A sighting counts at the other members as an independent report of
the indicator (it can corroborate it); a disputing ``opinion`` scales the indicator down at the members that trust
us, and removes it here at once (``trust`` ignores an indicator we disputed).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from distillguard.intel.member import Member
from distillguard.intel.tlp import Tlp, marking_id
from distillguard.timefmt import rfc3339_ms


def sighting(
    member: Member,
    indicator_id: str,
    count: int,
    first: datetime,
    last: datetime,
    tlp: Tlp,
    at: datetime | None = None,
    object_id: str | None = None,
) -> dict[str, Any]:
    """A signed sighting of ``indicator_id`` (made now, or ``at``); with ``object_id`` and ``at`` the same sighting is
    the same object every time it is made."""
    now = rfc3339_ms(at if at is not None else datetime.now(first.tzinfo))
    return member.signer.sign(
        {
            "type": "sighting",
            "spec_version": "2.1",
            "id": object_id or f"sighting--{uuid.uuid4()}",
            "created_by_ref": member.identity_id,
            "created": now,
            "modified": now,
            "sighting_of_ref": indicator_id,
            "count": max(1, count),
            "first_seen": rfc3339_ms(first),
            "last_seen": rfc3339_ms(max(first, last)),
            "where_sighted_refs": [member.identity_id],
            "object_marking_refs": [marking_id(tlp)],
        }
    )


def false_positive(
    member: Member, indicator_id: str, explanation: str, at: datetime, tlp: Tlp, object_id: str | None = None
) -> dict[str, Any]:
    """A signed dispute of ``indicator_id``; with ``object_id`` (and a fixed ``at``) the same report is the same object
    every time it is made (Ed25519 signatures are deterministic), so making it again stores and pushes nothing new."""
    now = rfc3339_ms(at)
    return member.signer.sign(
        {
            "type": "opinion",
            "spec_version": "2.1",
            "id": object_id or f"opinion--{uuid.uuid4()}",
            "created_by_ref": member.identity_id,
            "created": now,
            "modified": now,
            "opinion": "strongly-disagree",
            "explanation": explanation or "false positive",
            "object_refs": [indicator_id],
            "object_marking_refs": [marking_id(tlp)],
        }
    )
