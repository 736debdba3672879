"""Reviewers' decisions as feedback to partners: what a human concluded about accounts a partner's indicator matched.

- A **reversal** (the audit trail's ``case_reversed``): every partner indicator that matched one of the case's
  members is a false positive for us. The gateway signs a false-positive report for each (a STIX ``opinion``,
  ``strongly-disagree``, intel/feedback.py), which takes the indicator out of our feed at once (intel/trust.py) and,
  at the hub, scales it down at the members that trust us.
- A **confirmation** (``case_confirmed``): every partner indicator that matched a member was right. The gateway signs
  a ``sighting`` for each (count: the members it matched), which counts at the other members as an independent
  report of the indicator, so it can corroborate it there.

The reports say only what a human concluded about accounts the indicator matched: never the accounts, the case, the
reviewer or the reason. The trail is read from a cursor kept with the pull cursors (``intel_cursors``), so every
decision is handled once whichever gateway worker or replica gets to it first. A report's id is derived from
(indicator, case, kind) and its times from the case, so the same report made twice is the same object (Ed25519
signatures are deterministic): a retry after a failed push, or two replicas racing, store and push nothing new.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from distillguard.intel.feedback import false_positive, sighting
from distillguard.intel.member import Member
from distillguard.intel.tlp import Tlp

if TYPE_CHECKING:
    from distillguard.intel.feed import Feed
    from distillguard.intel.trust import PartnerEvidence
    from distillguard.respond.book import CaseBook

CURSOR = "audit:review-decisions"
# Audit entries read per round (the rest come next round).
BATCH = 1000
_NAMESPACE = uuid.UUID("5d0c3b52-8f0e-4c52-9a55-3f1e7c1b7a10")
EXPLANATION = "matched an account that a human reviewer cleared (case reversed)"
DECISIONS: dict[str, Literal["dispute", "sighting"]] = {"case_reversed": "dispute", "case_confirmed": "sighting"}


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: Literal["dispute", "sighting"]
    indicator_id: str
    case_id: str
    opened: datetime  # when the case was opened
    decided: datetime  # when the reviewer decided
    accounts: int  # the case's members the indicator matched


def review_feedback(
    book: CaseBook, evidence: PartnerEvidence, feed: Feed, own_identity: str, since_seq: int
) -> tuple[list[Feedback], int]:
    """What to tell partners about the reviewers' decisions after audit entry ``since_seq``, and the last entry
    read. Only partners' indicators, and none we have disputed already."""
    out: list[Feedback] = []
    last = since_seq
    for entry in book.audit(since=since_seq, limit=BATCH):
        last = entry.seq
        kind = DECISIONS.get(entry.action)
        if kind is None or entry.case_id is None:
            continue
        case = book.case(entry.case_id)
        matched: Counter[str] = Counter()
        for account_id in case.members:
            matched.update({m.indicator_id for m in evidence.matched(account_id)})
        for indicator, accounts in sorted(matched.items()):
            if own_identity in feed.disputed.get(indicator, {}) or not feed.reporters(indicator) - {own_identity}:
                continue
            out.append(Feedback(kind, indicator, case.case_id, case.opened_at, entry.at, accounts))
    return out, last


def _object_id(f: Feedback) -> str:
    prefix = "opinion" if f.kind == "dispute" else "sighting"
    return f"{prefix}--{uuid.uuid5(_NAMESPACE, f'{f.indicator_id}|{f.case_id}|{f.kind}')}"


def feedback_objects(member: Member, feedback: list[Feedback], tlp: Tlp) -> list[dict[str, Any]]:
    """The signed reports of ``feedback`` (the same object for the same feedback, every time)."""
    objects = []
    for f in feedback:
        if f.kind == "dispute":
            objects.append(false_positive(member, f.indicator_id, EXPLANATION, f.decided, tlp, object_id=_object_id(f)))
        else:
            objects.append(
                sighting(
                    member, f.indicator_id, f.accounts, f.opened, f.decided, tlp, at=f.decided, object_id=_object_id(f)
                )
            )
    return objects
