"""One account as an analyst reviews it: who it is, its score and the reasons with the calls behind them, its risk
over time, its standing, limits, cases, appeals, audit entries, campaigns, watermark checks and latest calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.sql.elements import ColumnElement

from distillguard.config import Settings
from distillguard.console.evidence import ReasonEvidence, explain
from distillguard.console.exchanges import Exchange, exchange
from distillguard.console.read.audit import Entry, recent_entries
from distillguard.events.logview import EventLogView, Traffic
from distillguard.respond.book import Appeal, Case, CaseBook
from distillguard.respond.standing import Standing
from distillguard.store.models import Account, ApiKey
from distillguard.store.schema import campaign_members, campaigns, cases, score_history, scores
from distillguard.store.state import StateStore
from distillguard.timefmt import as_utc
from distillguard.watermark.checks import list_checks

# Points of the risk timeline (the newest), audit entries and level changes shown.
HISTORY_POINTS = 2000
AUDIT_ENTRIES = 50
LEVEL_CHANGES = 200
CHECKS = 50


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # key, account, org, throttle
    kind: str  # requests, tokens
    spec: str  # "600/minute"
    source: str  # where it comes from: "tier standard", "override", "throttle"


@dataclass
class Score:
    risk: float
    verdict: str
    reasons: list[dict[str, Any]]
    calls: int
    updated_at: datetime


@dataclass
class CampaignMembership:
    cluster_id: str
    link_strength: float | None
    verdict: str
    risk: float | None
    size: int
    last_seen: datetime


@dataclass
class AccountDetail:
    account_id: str
    account: Account | None
    keys: list[ApiKey]
    score: Score | None
    standing: Standing | None
    history: list[dict[str, Any]]
    level_changes: list[Entry]
    traffic: Traffic
    limits: list[Limit]
    cases: list[Case]
    appeals: list[Appeal]
    audit: list[Entry]
    campaigns: list[CampaignMembership]
    checks: list[dict[str, Any]]
    exchanges: list[Exchange]
    evidence: list[ReasonEvidence] = field(default_factory=list)
    evidence_calls: int = 0
    # False when the calls were searched for in the archive and the search stopped at its bound (shared deployment).
    calls_complete: bool = True

    @property
    def exists(self) -> bool:
        return bool(self.account or self.score or self.standing or self.traffic.calls or self.history or self.campaigns)


def limits_of(settings: Settings, account: Account | None, level: str | None) -> list[Limit]:
    """The limits that apply to the account's calls (as resolve_rules builds them), and the throttle's on top when
    its level throttles it."""
    config = settings.limits
    tier_name = (account.tier if account is not None else None) or config.default_tier
    tier = config.tiers.get(tier_name) or config.tiers[config.default_tier]
    source = f"tier {tier_name}" if tier_name in config.tiers else f"tier {config.default_tier} (unknown tier)"
    out = [Limit("key", k, s, source) for k in ("requests", "tokens") for s in getattr(tier.key, k)]
    override = account.limits_override if account is not None else None
    for kind in ("requests", "tokens"):
        if override and kind in override:
            out += [Limit("account", kind, s, "override") for s in override[kind]]
        else:
            out += [Limit("account", kind, s, source) for s in getattr(tier.account, kind)]
    if account is not None and account.org_id:
        out += [Limit("org", k, s, source) for k in ("requests", "tokens") for s in getattr(tier.org, k)]
    if level is not None and "throttle" in settings.respond.actions.get(level, []):
        throttle = settings.respond.throttle
        out += [Limit("throttle", k, s, f"level {level}") for k in ("requests", "tokens") for s in getattr(throttle, k)]
    return out


def read_account(
    store: StateStore, events: EventLogView, book: CaseBook, settings: Settings, account_id: str
) -> AccountDetail:
    engine = store.engine
    account = store.get_account(account_id)
    keys = store.list_keys(account_id)
    with engine.connect() as conn:
        row = conn.execute(select(scores).where(scores.c.account_id == account_id)).mappings().first()
        score = (
            Score(row["risk"], row["verdict"], list(row["reasons"] or []), int(row["calls"]), as_utc(row["updated_at"]))
            if row is not None
            else None
        )
        history = [
            {"at": as_utc(at), "risk": risk, "verdict": verdict}
            for at, risk, verdict in conn.execute(
                select(score_history.c.at, score_history.c.risk, score_history.c.verdict)
                .where(score_history.c.account_id == account_id)
                .order_by(score_history.c.at.desc())
                .limit(HISTORY_POINTS)
            )
        ][::-1]
        memberships = [
            CampaignMembership(
                m["cluster_id"], m["link_strength"], m["verdict"], m["risk"], m["size"], as_utc(m["last_seen"])
            )
            for m in conn.execute(
                select(
                    campaign_members.c.cluster_id,
                    campaign_members.c.link_strength,
                    campaigns.c.verdict,
                    campaigns.c.risk,
                    campaigns.c.size,
                    campaigns.c.last_seen,
                )
                .join(campaigns, campaigns.c.cluster_id == campaign_members.c.cluster_id)
                .where(campaign_members.c.account_id == account_id)
                .order_by(campaigns.c.last_seen.desc())
            ).mappings()
        ]
    standing = book.standing(account_id)
    known_standing = standing if standing.seq else None
    case_ids = _case_ids(engine, account_id, standing.case_id, [m.cluster_id for m in memberships])
    found_cases = sorted((book.case(c) for c in case_ids), key=lambda c: c.opened_at, reverse=True)
    appeals = [a for c in found_cases for a in book.appeals(c.case_id) if a.account_id == account_id]
    traffic = events.traffic([account_id]).get(account_id, Traffic())
    console = settings.console
    latest, signals = events.account_calls(
        account_id, console.sample_exchanges, console.evidence_calls if score is not None else 0
    )
    signal_rows = signals.rows
    return AccountDetail(
        account_id=account_id,
        account=account,
        keys=keys,
        score=score,
        standing=known_standing,
        history=history,
        level_changes=recent_entries(engine, LEVEL_CHANGES, account_id=account_id, action_prefix="level_"),
        traffic=traffic,
        limits=limits_of(settings, account, known_standing.level if known_standing else None),
        cases=found_cases,
        appeals=appeals,
        audit=recent_entries(engine, AUDIT_ENTRIES, account_id=account_id),
        campaigns=memberships,
        checks=list_checks(engine, subject_id=account_id, limit=CHECKS),
        exchanges=[exchange(r, settings.events) for r in latest.rows],
        evidence=explain(score.reasons, signal_rows) if score is not None else [],
        evidence_calls=len(signal_rows),
        calls_complete=latest.complete and signals.complete,
    )


def _case_ids(engine: Engine, account_id: str, standing_case: str | None, clusters: list[str]) -> list[str]:
    """Cases about the account, the one its standing names, and those of its campaigns."""
    subjects = [account_id, *clusters]
    condition: ColumnElement[bool] = cases.c.subject_id.in_(subjects)
    if standing_case is not None:
        condition = or_(condition, cases.c.case_id == standing_case)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(cases.c.case_id).where(condition))]
