"""The review queue (open and escalated cases, oldest decisions first to hand) and one case with what a reviewer
needs to decide it: reasons, members and their standings, appeals and the case's audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from distillguard.console.evidence import ReasonEvidence, explain
from distillguard.console.read.audit import Entry, recent_entries
from distillguard.events.logview import EventLogView
from distillguard.respond.book import OPEN_STATUSES, Appeal, Case, CaseBook
from distillguard.respond.standing import Standing
from distillguard.store.schema import campaigns, scores

# Members' standings shown on a case page (a campaign case can name thousands; the campaign page lists them all).
MEMBERS_SHOWN = 200
AUDIT_SHOWN = 200


@dataclass
class Queue:
    cases: list[Case]
    counts: dict[str, int]
    status: str
    offset: int
    has_next: bool


@dataclass
class CaseView:
    case: Case
    standings: list[Standing]
    appeals: list[Appeal]
    audit: list[Entry]
    # An account's case: its latest reasons with the calls behind them; a campaign's: the evidence linking it.
    evidence: list[ReasonEvidence] = field(default_factory=list)
    evidence_calls: int = 0
    campaign_evidence: list[dict[str, Any]] = field(default_factory=list)


def read_queue(book: CaseBook, status: str, offset: int, limit: int) -> Queue:
    """Cases with ``status`` ("open", "escalated", ...; "waiting" for both awaiting a reviewer), newest first."""
    if status == "waiting":
        # Two statuses, each newest first: the union is small enough to merge (a page's worth of each).
        both = [c for s in OPEN_STATUSES for c in book.cases(s, offset + limit + 1, 0)]
        both.sort(key=lambda c: (c.updated_at, c.case_id), reverse=True)
        page = both[offset : offset + limit + 1]
    else:
        page = book.cases(status, limit + 1, offset)
    return Queue(page[:limit], book.count_cases(), status, offset, len(page) > limit)


def read_case(book: CaseBook, engine: Engine, events: EventLogView, evidence_calls: int, case_id: str) -> CaseView:
    """Raises CaseError (404) for an unknown case."""
    case = book.case(case_id)
    view = CaseView(
        case=case,
        standings=book.standings_of(case.members[:MEMBERS_SHOWN]),
        appeals=book.appeals(case_id),
        audit=recent_entries(engine, AUDIT_SHOWN, case_id=case_id),
    )
    with engine.connect() as conn:
        if case.subject_kind == "campaign":
            # Only the evidence: a big campaign's body carries thousands of links.
            query = select(campaigns.c.body["evidence"]).where(campaigns.c.cluster_id == case.subject_id)
            evidence = conn.execute(query).scalar()
            view.campaign_evidence = [e for e in evidence or [] if isinstance(e, dict)]
        else:
            reasons = conn.execute(select(scores.c.reasons).where(scores.c.account_id == case.subject_id)).scalar()
            rows = events.signal_rows(case.subject_id, evidence_calls) if reasons else []
            view.evidence, view.evidence_calls = explain(reasons or [], rows), len(rows)
    return view
