"""Members' final verdicts: each account's own score, raised by its campaign's where the campaign is worse."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from distillguard.clusters.campaign import Campaign, inherit
from distillguard.detect.reasons import Reason
from distillguard.detect.scorer import Score
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, FLAGGED, Verdict
from distillguard.events.readers import Row


@dataclass
class Outcome:
    """An account's final risk and verdict, when it would have been flagged, and its campaign if any."""

    risk: float
    verdict: Verdict
    reasons: list[Reason]
    first_flagged_us: int | None
    events_until_flagged: int | None
    cluster_id: str | None = None


def settle(
    results: Iterable[tuple[Score, int | None, int | None]],
    campaigns: Iterable[Campaign],
    rows: Iterable[Row],
    thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS,
) -> dict[str, Outcome]:
    """Final outcomes of every scored account. A member flagged only through its campaign counts as flagged when
    the campaign was (or at its own first event, if later), after as many of its events as it had sent by then."""
    member_of = {m: c for c in campaigns for m in c.members}
    outcomes: dict[str, Outcome] = {}
    flagged_at: dict[str, int] = {}
    for score, first_us, until in results:
        outcome = Outcome(score.risk, score.verdict, list(score.reasons), first_us, until)
        campaign = member_of.get(score.account_id)
        if campaign is not None:
            outcome.cluster_id = campaign.cluster_id
            risk, verdict, reason = inherit(score, campaign, thresholds)
            if reason is not None:
                outcome.reasons.insert(0, reason)
            if risk > score.risk:
                outcome.risk, outcome.verdict = risk, verdict
                if verdict in FLAGGED and first_us is None:
                    flagged_at[score.account_id] = campaign.first_flagged_us or campaign.last_us
            campaign.member_verdicts[score.account_id] = outcome.verdict
        outcomes[score.account_id] = outcome
    if flagged_at:
        _count_until(flagged_at, rows, outcomes)
    return outcomes


def _count_until(flagged_at: dict[str, int], rows: Iterable[Row], outcomes: dict[str, Outcome]) -> None:
    counts = dict.fromkeys(flagged_at, 0)
    first: dict[str, int] = {}
    for row in rows:
        account_id = row[1]
        at = flagged_at.get(account_id)
        if at is None:
            continue
        first.setdefault(account_id, row[0])
        if row[0] <= at:
            counts[account_id] += 1
    for account_id, at in flagged_at.items():
        outcome = outcomes[account_id]
        outcome.first_flagged_us = max(at, first.get(account_id, at))
        outcome.events_until_flagged = max(1, counts[account_id])
