"""Reviewers' reversals as feedback to partners: a partner's indicator that matched an account a reviewer cleared is
disputed, here and at the hub.

When a reviewer reverses a case (the audit trail's ``case_reversed``), every partner indicator that matched one of
its members is a false positive for us: the gateway signs a false-positive report (a STIX ``opinion``,
``strongly-disagree``, intel/feedback.py) for each, stores it (our own dispute takes the indicator out of our feed
at once, intel/trust.py) and pushes it to the hub, where it scales the indicator down at the members that trust us.
The report says only that a reviewer cleared an account the indicator matched: never the account, the case's
reason or anything of the customer's.

The trail is read from a cursor kept with the pull cursors (``intel_cursors``), so every reversal is handled once
whichever gateway worker or replica gets to it first. A report's id is derived from (indicator, case) and its time
is the reversal's, so the same report made twice is the same object: a retry after a failed push, or two replicas
racing, store and push nothing new.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from distillguard.intel.feedback import false_positive
from distillguard.intel.member import Member
from distillguard.intel.tlp import Tlp

if TYPE_CHECKING:
    from distillguard.intel.feed import Feed
    from distillguard.intel.trust import PartnerEvidence
    from distillguard.respond.book import CaseBook

CURSOR = "audit:case_reversed"
# Audit entries read per round (the rest come next round).
BATCH = 1000
_NAMESPACE = uuid.UUID("5d0c3b52-8f0e-4c52-9a55-3f1e7c1b7a10")
EXPLANATION = "matched an account that a human reviewer cleared (case reversed)"


@dataclass(frozen=True, slots=True)
class Dispute:
    indicator_id: str
    case_id: str
    at: datetime


def reversal_disputes(
    book: CaseBook, evidence: PartnerEvidence, feed: Feed, own_identity: str, since_seq: int
) -> tuple[list[Dispute], int]:
    """The partner indicators to dispute for the reversals after audit entry ``since_seq``, and the last entry read.
    Only partners' indicators we have not disputed yet, each once per case."""
    disputes: dict[tuple[str, str], Dispute] = {}
    last = since_seq
    for entry in book.audit(since=since_seq, limit=BATCH):
        last = entry.seq
        if entry.action != "case_reversed" or entry.case_id is None:
            continue
        for account_id in book.case(entry.case_id).members:
            for match in evidence.matched(account_id):
                indicator = match.indicator_id
                if own_identity in feed.disputed.get(indicator, {}) or not feed.reporters(indicator) - {own_identity}:
                    continue
                disputes.setdefault((indicator, entry.case_id), Dispute(indicator, entry.case_id, entry.at))
    return list(disputes.values()), last


def dispute_objects(member: Member, disputes: list[Dispute], tlp: Tlp) -> list[dict[str, Any]]:
    """The signed false-positive reports of ``disputes`` (the same object for the same dispute, every time)."""
    return [
        false_positive(
            member,
            d.indicator_id,
            EXPLANATION,
            d.at,
            tlp,
            object_id=f"opinion--{uuid.uuid5(_NAMESPACE, f'{d.indicator_id}|{d.case_id}')}",
        )
        for d in disputes
    ]
