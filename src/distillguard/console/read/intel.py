"""Partner intel: what each partner sent (the verified objects in ``intel_objects``, by signer and type), their
newest indicators, and the accounts it matched (scores at watch or above whose reasons carry ``partner_intel``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, cast, func, select

from distillguard.config import IntelConfig
from distillguard.detect.verdicts import VERDICTS
from distillguard.intel.vocabulary import CAMPAIGN_EXT
from distillguard.store.schema import intel_objects, scores
from distillguard.timefmt import as_utc

# The detection reason partner intel gives an account (intel/trust.py).
PARTNER_REASON = "partner_intel"
FLAGGED_OR_WATCHED = [v for v in VERDICTS if v != "allow"]


@dataclass
class SenderTotals:
    signer: str
    name: str | None  # the partner's configured name; None for an identity no longer (or never) configured
    own: bool
    types: dict[str, int]
    newest: datetime


@dataclass
class IndicatorRow:
    id: str
    signer: str
    sender: str | None  # the partner's configured name
    name: str
    kind: str | None
    campaign: str | None
    values: int | None
    received_at: datetime
    valid_from: str | None
    revoked: bool


@dataclass
class MatchedAccount:
    account_id: str
    risk: float
    verdict: str
    updated_at: datetime
    evidence: float | None
    detail: str


@dataclass
class IntelView:
    senders: list[SenderTotals]
    indicators: list[IndicatorRow]
    matched: list[MatchedAccount]


def partner_names(config: IntelConfig) -> dict[str, str]:
    return {p.identity: p.name for p in config.partners}


def read_intel(engine: Engine, config: IntelConfig, own_identity: str | None, limit: int) -> IntelView:
    names = partner_names(config)
    with engine.connect() as conn:
        totals: dict[str, SenderTotals] = {}
        for signer, kind, n, newest in conn.execute(
            select(
                intel_objects.c.signer, intel_objects.c.type, func.count(), func.max(intel_objects.c.received_at)
            ).group_by(intel_objects.c.signer, intel_objects.c.type)
        ):
            entry = totals.setdefault(
                signer, SenderTotals(signer, names.get(signer), signer == own_identity, {}, as_utc(newest))
            )
            entry.types[str(kind)] = int(n)
            entry.newest = max(entry.newest, as_utc(newest))
        indicators = []
        for signer, received, body in conn.execute(
            select(intel_objects.c.signer, intel_objects.c.received_at, intel_objects.c.body)
            .where(intel_objects.c.type == "indicator")
            .order_by(intel_objects.c.received_at.desc(), intel_objects.c.id)
            .limit(limit)
        ):
            ext: dict[str, Any] = (body.get("extensions") or {}).get(CAMPAIGN_EXT.id) or {}
            indicators.append(
                IndicatorRow(
                    id=str(body.get("id")),
                    signer=signer,
                    sender=names.get(signer),
                    name=str(body.get("name") or body.get("id")),
                    kind=ext.get("indicator_kind"),
                    campaign=ext.get("campaign"),
                    values=ext.get("values"),
                    received_at=as_utc(received),
                    valid_from=body.get("valid_from"),
                    revoked=bool(body.get("revoked")),
                )
            )
        matched = []
        # Accounts at watch or above (partner intel alone lifts an account to watch at most; below it, a match
        # changed nothing), their reasons read for the partner reason: the verdict index keeps it off the rest.
        for account_id, risk, verdict, updated, reasons in conn.execute(
            select(scores.c.account_id, scores.c.risk, scores.c.verdict, scores.c.updated_at, scores.c.reasons)
            .where(
                scores.c.verdict.in_(FLAGGED_OR_WATCHED), cast(scores.c.reasons, Text).contains(f'"{PARTNER_REASON}"')
            )
            .order_by(scores.c.risk.desc(), scores.c.account_id)
            .limit(limit)
        ):
            reason = next((r for r in reasons or [] if r.get("signal") == PARTNER_REASON), None)
            if reason is None:
                continue
            matched.append(
                MatchedAccount(
                    account_id, risk, verdict, as_utc(updated), reason.get("value"), str(reason.get("detail"))
                )
            )
    senders = sorted(totals.values(), key=lambda s: (s.own, s.name is None, s.name or s.signer))
    return IntelView(senders, indicators, matched)
