"""Everything an evidence pack says about its subject (an account, or a campaign and its members), gathered from
the state store and the deployment's events (the event log, or the store's rollups and the Parquet archive:
events/logview.py) into one JSON-ready document: ``case.json``.

The document holds the accounts (profile, standing, newest score with its reasons, risk history, traffic), the
campaign (its verdict, capabilities, linking evidence on every member pair kept), cases with their appeals, the
audit entries about them (with their chain positions and hashes, to be checked against the live trail), watermark
and provenance checks, partner intelligence that matched, traffic over time and sample exchanges (under the
``[cases]`` privacy rules). For a large campaign the per-account detail (history, traffic series, exchanges) is
kept for the :data:`DETAIL_ACCOUNTS` most relevant members (riskiest, then most firmly linked); every member is
still listed with its standing and score, and the document says what was left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, fields
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.sql.elements import ColumnElement

from distillguard.cases import eventlog
from distillguard.cases.privacy import describe, redact
from distillguard.config import CasesConfig, Settings
from distillguard.detect.verdicts import FLAGGED
from distillguard.events.logview import EventLogView, open_event_log
from distillguard.respond.audit import entry_hash
from distillguard.respond.book import CaseBook, CaseError
from distillguard.store.chunks import chunks
from distillguard.store.models import Account
from distillguard.store.schema import accounts, campaign_members, campaigns, cases, score_history, scores, standings
from distillguard.timefmt import as_utc, rfc3339
from distillguard.watermark.checks import checks_about

SubjectKind = Literal["account", "campaign"]
# Members given full detail (risk history, traffic series, sample exchanges) in a campaign's pack.
DETAIL_ACCOUNTS = 200
INTEL_SIGNAL = "partner_intel"


@dataclass(frozen=True, slots=True)
class Subject:
    kind: SubjectKind
    id: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


class SubjectNotFound(LookupError):
    """The account or campaign a pack was asked for is not known to this deployment."""


def _in(conn: Connection, column: ColumnElement[Any], ids: Sequence[str], *columns: Any) -> Iterator[Any]:
    """Rows whose ``column`` is one of ``ids`` (queried in chunks; ``columns``: what to select, default the table)."""
    table = column.table
    for part in chunks(ids):
        yield from conn.execute(select(*(columns or (table,))).where(column.in_(list(part))))


def _when(value: Any) -> str | None:
    return rfc3339(as_utc(value)) if value is not None else None


# the subject ---------------------------------------------------------------------------------------------------
def _campaign(conn: Connection, cluster_id: str, book: CaseBook) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The campaign as last found (``campaigns.body``) and its members with their link strengths."""
    row = conn.execute(select(campaigns).where(campaigns.c.cluster_id == cluster_id)).first()
    members: dict[str, float | None] = {
        r.account_id: r.link_strength
        for r in conn.execute(select(campaign_members).where(campaign_members.c.cluster_id == cluster_id))
    }
    if row is None:
        # A campaign known only by its case (imported with `review import-campaigns` before campaigns were saved).
        case = book.latest_case("campaign", cluster_id)
        if case is None:
            raise SubjectNotFound(
                f"no campaign {cluster_id!r} in this deployment's store (campaigns are saved by `serve`'s clustering, "
                "`analyze --data-dir` and `review import-campaigns`; `distillguard clusters` lists them)"
            )
        body: dict[str, Any] = {"cluster_id": cluster_id, "verdict": case.proposed, "risk": case.risk}
        return body, dict.fromkeys(case.members)
    m = row._mapping
    body = dict(m["body"] or {})
    body.update(
        cluster_id=cluster_id,
        found_at=_when(m["found_at"]),
        verdict=m["verdict"],
        risk=m["risk"],
        size=m["size"],
        events=m["events"],
        tokens=m["tokens"],
        first_seen=_when(m["first_seen"]),
        last_seen=_when(m["last_seen"]),
    )
    for member in body.get("members") or []:
        members.setdefault(str(member.get("account_id")), member.get("link_strength"))
    return body, members


def _account_known(conn: Connection, account_id: str, events: EventLogView) -> bool:
    for column in (accounts.c.account_id, scores.c.account_id, standings.c.account_id, campaign_members.c.account_id):
        if conn.execute(select(column).where(column == account_id).limit(1)).first() is not None:
            return True
    return bool(events.traffic([account_id]))


def _memberships(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    """The campaigns an account belongs to, each with the links that touch it."""
    out = []
    query = (
        select(campaigns, campaign_members.c.link_strength)
        .join(campaign_members, campaign_members.c.cluster_id == campaigns.c.cluster_id)
        .where(campaign_members.c.account_id == account_id)
        .order_by(campaigns.c.last_seen.desc())
    )
    for row in conn.execute(query):
        m = row._mapping
        links = [lk for lk in (m["body"] or {}).get("links") or [] if account_id in (lk.get("a"), lk.get("b"))]
        out.append(
            {
                "cluster_id": m["cluster_id"],
                "verdict": m["verdict"],
                "risk": m["risk"],
                "size": m["size"],
                "first_seen": _when(m["first_seen"]),
                "last_seen": _when(m["last_seen"]),
                "link_strength": m["link_strength"],
                "links": links,
                "evidence": (m["body"] or {}).get("evidence") or [],
            }
        )
    return out


# the members ---------------------------------------------------------------------------------------------------
def _profiles(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    names = [f.name for f in fields(Account)]
    return {
        row.account_id: Account(**{name: row._mapping[name] for name in names}).to_json()
        for row in _in(conn, accounts.c.account_id, ids)
    }


def _scores(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for row in _in(conn, scores.c.account_id, ids):
        m = row._mapping
        out[m["account_id"]] = {
            "risk": m["risk"],
            "verdict": m["verdict"],
            "reasons": list(m["reasons"] or []),
            "calls": m["calls"],
            "updated_at": _when(m["updated_at"]),
        }
    return out


def _history(conn: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    rows = list(_in(conn, score_history.c.account_id, ids))
    for row in sorted(rows, key=lambda r: (r.account_id, as_utc(r.at), r.id)):
        out.setdefault(row.account_id, []).append(
            {"at": _when(row.at), "risk": row.risk, "verdict": row.verdict, "account_id": row.account_id}
        )
    return out


def _relevance(member: dict[str, Any]) -> tuple[float, float, str]:
    score = member.get("score") or {}
    risk = score.get("risk")
    if risk is None:
        risk = (member.get("standing") or {}).get("risk")
    return (-(risk or 0.0), -(member.get("link_strength") or 0.0), member["account_id"])


# the trail -----------------------------------------------------------------------------------------------------
def _audit(book: CaseBook, case_ids: set[str], members: Sequence[str]) -> dict[str, Any]:
    entries = book.audit_about(case_ids, members)
    head_seq, head_hash = book.chain_head()
    checked, broken = book.verify()
    rows = []
    for e in entries:
        recomputed = entry_hash(e.seq, e.at, e.actor, e.action, e.case_id, e.account_id, e.detail, e.prev_hash)
        rows.append({**e.to_json(), "prev_hash": e.prev_hash, "hash_ok": recomputed == e.hash})
    return {
        "chain_head": {"seq": head_seq, "hash": head_hash},
        "live_chain": {"entries_checked": checked, "first_broken": broken, "whole": broken is None},
        "entries": rows,
    }


def _cases(conn: Connection, book: CaseBook, subject_ids: Sequence[str], more: set[str]) -> list[dict[str, Any]]:
    ids = {row.case_id for row in _in(conn, cases.c.subject_id, subject_ids, cases.c.case_id)} | more
    out = []
    for case_id in sorted(ids):
        try:
            case = book.case(case_id)
        except CaseError:
            continue  # named by an audit entry or a standing, but gone from the case table: the trail still shows it
        out.append({**case.to_json(), "appeals": [a.to_json() for a in book.appeals(case_id)]})
    out.sort(key=lambda c: c["opened_at"])
    return out


# the whole -----------------------------------------------------------------------------------------------------
def gather(settings: Settings, engine: Engine, book: CaseBook, subject: Subject, samples: int) -> dict[str, Any]:
    """The pack's document (without ``deployment``, ``created_at`` and ``generator``, which the writer adds).

    Raises :class:`SubjectNotFound` for an account or campaign this deployment does not know."""
    events = open_event_log(settings, engine, export=True)
    notes: list[str] = []
    if not events.available:
        notes.append(f"No events to read ({events.source}): the pack has no traffic and no sample exchanges.")
    elif not events.calls_available:
        notes.append(
            f"Traffic totals come from {events.source}: the pack has no traffic over time and no sample exchanges."
        )
    with closing(events), engine.connect() as conn:
        campaign: dict[str, Any] | None = None
        memberships: list[dict[str, Any]] = []
        if subject.kind == "campaign":
            campaign, strengths = _campaign(conn, subject.id, book)
        elif _account_known(conn, subject.id, events):
            memberships = _memberships(conn, subject.id)
            strengths = {subject.id: None}
        else:
            raise SubjectNotFound(
                f"no account {subject.id!r} in this deployment's store or event log (`distillguard accounts list` "
                "lists them)"
            )
        ids = list(strengths)
        members = _members(conn, book, events, strengths)
        detailed = [m["account_id"] for m in members[:DETAIL_ACCOUNTS]]
        if len(members) > DETAIL_ACCOUNTS:
            notes.append(
                f"Risk history, traffic series and sample exchanges are given for the {DETAIL_ACCOUNTS} riskiest "
                f"(then most firmly linked) of the {len(members)} members; every member is listed."
            )
        history = _history(conn, detailed)
        for m in members:
            m["history"] = history.get(m["account_id"], [])
        traffic, exchanges = _activity(events, detailed, samples, settings.cases, notes)
        linked_cases = {m["standing"]["case_id"] for m in members if m["standing"] and m["standing"]["case_id"]}
        linked_cases |= {e.case_id for e in book.audit_about((), ids) if e.case_id}
        subject_ids = [subject.id, *ids] if subject.kind == "campaign" else ids
        case_list = _cases(conn, book, subject_ids, linked_cases)
    return {
        "subject": subject.to_json(),
        "summary": _summary(subject, campaign, members),
        "privacy": describe(settings.cases, settings.events),
        "notes": notes,
        "campaign": campaign,
        "campaigns": memberships,
        "accounts": members,
        "traffic": traffic,
        "cases": case_list,
        "checks": checks_about(engine, subject_ids),
        "intel_matches": [
            {"account_id": m["account_id"], **r}
            for m in members
            for r in (m["score"] or {}).get("reasons", [])
            if isinstance(r, dict) and r.get("signal") == INTEL_SIGNAL
        ],
        "audit": _audit(book, {c["case_id"] for c in case_list}, ids),
        "exchanges": exchanges,
    }


def _members(
    conn: Connection, book: CaseBook, events: EventLogView, strengths: dict[str, float | None]
) -> list[dict[str, Any]]:
    """Every member with its profile, standing, newest score and traffic totals, the most relevant first."""
    ids = list(strengths)
    profiles, score_rows = _profiles(conn, ids), _scores(conn, ids)
    traffic = eventlog.account_traffic(events, ids)
    members = []
    for account_id in ids:
        standing = book.standing(account_id)
        members.append(
            {
                "account_id": account_id,
                "link_strength": strengths[account_id],
                "profile": profiles.get(account_id),
                # A standing never written (seq 0) is the default: allow, no case.
                "standing": standing.to_json() if standing.seq else None,
                "score": score_rows.get(account_id),
                "traffic": traffic.get(account_id),
            }
        )
    members.sort(key=_relevance)
    return members


def _activity(
    events: EventLogView, detailed: list[str], samples: int, rules: CasesConfig, notes: list[str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The detailed members' traffic over time and their sample exchanges (under the privacy rules); what a read
    bounded in the archive could not cover goes to ``notes``."""
    if not events.calls_available:
        return None, []
    traffic = None
    bounds = eventlog.span(events, detailed)
    if bounds is not None:
        width, series, complete = eventlog.traffic_series(events, detailed, *bounds)
        traffic = {"bucket_seconds": width, "series": series}
        if not complete:
            notes.append(
                "The traffic over time covers the newest part of the members' activity only: the archive read stopped "
                "at its bound."
            )
    exchanges = []
    incomplete = []
    for account_id in detailed:
        chosen, complete = eventlog.samples(events, account_id, samples)
        exchanges += [redact(e, rules) for e in chosen]
        if not complete:
            incomplete.append(account_id)
    if incomplete:
        notes.append(
            f"Sample exchanges of {len(incomplete)} account(s) were chosen among the calls found before the archive "
            f"read stopped at its bound: {', '.join(incomplete[:10])}{' …' if len(incomplete) > 10 else ''}."
        )
    return traffic, exchanges


def _summary(subject: Subject, campaign: dict[str, Any] | None, members: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [m["traffic"] for m in members if m["traffic"]]
    own = members[0] if subject.kind == "account" else {}
    score = own.get("score") or {}
    source = campaign if campaign is not None else score
    return {
        "accounts": len(members),
        "verdict": source.get("verdict"),
        "risk": source.get("risk"),
        "level": (own.get("standing") or {}).get("level", "allow") if own else None,
        "calls": sum(t["calls"] for t in totals) if totals else (campaign or {}).get("events"),
        "tokens": (
            sum(t["prompt_tokens"] + t["completion_tokens"] for t in totals)
            if totals
            else (campaign or {}).get("tokens")
        ),
        "first_seen": min(t["first_seen"] for t in totals) if totals else (campaign or {}).get("first_seen"),
        "last_seen": max(t["last_seen"] for t in totals) if totals else (campaign or {}).get("last_seen"),
        "capabilities": (campaign or {}).get("capabilities") or {},
        "flagged_members": sum(1 for m in members if (m["score"] or {}).get("verdict") in FLAGGED),
    }
