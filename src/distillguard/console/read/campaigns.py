"""Campaigns (hydra clusters) as the last clustering run stored them: the list, and one campaign with its members,
the links between them and the evidence on each, and its case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from distillguard.events.logview import EventLogView, Traffic
from distillguard.respond.book import OPEN_STATUSES, Case, CaseBook
from distillguard.store.chunks import chunks
from distillguard.store.schema import campaign_members, campaigns, cases, scores, standings
from distillguard.timefmt import as_utc


@dataclass
class CampaignSummary:
    cluster_id: str
    found_at: datetime
    verdict: str
    risk: float | None
    size: int
    events: int
    tokens: int
    first_seen: datetime
    last_seen: datetime
    capabilities: dict[str, int]
    evidence_kinds: list[str]
    case_id: str | None = None

    @property
    def top_capabilities(self) -> list[str]:
        return sorted(self.capabilities, key=lambda k: (-self.capabilities[k], k))[:3]

    @property
    def span_s(self) -> float:
        return (self.last_seen - self.first_seen).total_seconds()


@dataclass
class Member:
    account_id: str
    link_strength: float | None
    verdict: str | None
    risk: float | None
    level: str | None
    traffic: Traffic


@dataclass
class CampaignDetail:
    summary: CampaignSummary
    body: dict[str, Any]
    members: list[Member]
    links: list[dict[str, Any]]
    case: Case | None


def _summary(m: Any, body: dict[str, Any]) -> CampaignSummary:
    return CampaignSummary(
        cluster_id=m["cluster_id"],
        found_at=as_utc(m["found_at"]),
        verdict=m["verdict"],
        risk=m["risk"],
        size=int(m["size"]),
        events=int(m["events"]),
        tokens=int(m["tokens"]),
        first_seen=as_utc(m["first_seen"]),
        last_seen=as_utc(m["last_seen"]),
        capabilities={str(k): int(v) for k, v in (body.get("capabilities") or {}).items()},
        evidence_kinds=[str(e.get("kind")) for e in body.get("evidence") or [] if isinstance(e, dict)],
    )


_COLUMNS = (
    campaigns.c.cluster_id,
    campaigns.c.found_at,
    campaigns.c.verdict,
    campaigns.c.risk,
    campaigns.c.size,
    campaigns.c.events,
    campaigns.c.tokens,
    campaigns.c.first_seen,
    campaigns.c.last_seen,
)


def list_campaigns(engine: Engine, verdict: str | None, offset: int, limit: int) -> list[CampaignSummary]:
    """Campaigns, the riskiest first; with what they target, their kinds of evidence and their open case."""
    query = (
        select(
            *_COLUMNS,
            campaigns.c.body["capabilities"].label("capabilities"),
            campaigns.c.body["evidence"].label("evidence"),
        )
        .order_by(campaigns.c.risk.desc().nulls_last(), campaigns.c.last_seen.desc(), campaigns.c.cluster_id)
        .limit(limit)
        .offset(offset)
    )
    if verdict is not None:
        query = query.where(campaigns.c.verdict == verdict)
    with engine.connect() as conn:
        found = [
            _summary(m, {"capabilities": m["capabilities"], "evidence": m["evidence"]})
            for m in conn.execute(query).mappings()
        ]
        by_id = {c.cluster_id: c for c in found}
        if by_id:
            for case_id, subject in conn.execute(
                select(cases.c.case_id, cases.c.subject_id).where(
                    cases.c.subject_kind == "campaign",
                    cases.c.subject_id.in_(list(by_id)),
                    cases.c.status.in_(OPEN_STATUSES),
                )
            ):
                by_id[subject].case_id = case_id
    return found


def read_campaign(engine: Engine, events: EventLogView, book: CaseBook, cluster_id: str) -> CampaignDetail | None:
    with engine.connect() as conn:
        m = (
            conn.execute(select(*_COLUMNS, campaigns.c.body).where(campaigns.c.cluster_id == cluster_id))
            .mappings()
            .first()
        )
        if m is None:
            return None
        body = dict(m["body"] or {})
        rows = conn.execute(
            select(campaign_members.c.account_id, campaign_members.c.link_strength)
            .where(campaign_members.c.cluster_id == cluster_id)
            .order_by(campaign_members.c.link_strength.desc().nulls_last(), campaign_members.c.account_id)
        ).all()
        ids = [r[0] for r in rows]
        verdicts: dict[str, tuple[str, float]] = {}
        levels: dict[str, str] = {}
        for chunk in chunks(ids):
            verdicts.update(
                (a, (v, r))
                for a, v, r in conn.execute(
                    select(scores.c.account_id, scores.c.verdict, scores.c.risk).where(scores.c.account_id.in_(chunk))
                )
            )
            levels.update(
                (a, level)
                for a, level in conn.execute(
                    select(standings.c.account_id, standings.c.level).where(standings.c.account_id.in_(chunk))
                )
            )
    traffic = events.traffic(ids)
    members = [
        Member(
            account_id=a,
            link_strength=strength,
            verdict=verdicts[a][0] if a in verdicts else None,
            risk=verdicts[a][1] if a in verdicts else None,
            level=levels.get(a),
            traffic=traffic.get(a, Traffic()),
        )
        for a, strength in rows
    ]
    summary = _summary(m, body)
    case = book.latest_case("campaign", cluster_id)
    summary.case_id = case.case_id if case is not None and case.open else None
    links = [lk for lk in body.get("links") or [] if isinstance(lk, dict)]
    return CampaignDetail(summary, body, members, links, case)
