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
    outcomes, flagged_at = raise_members(results, campaigns, thresholds)
    if flagged_at:
        count_flagged(outcomes, flagged_at, events_until(flagged_at, rows))
    return outcomes


def raise_members(
    results: Iterable[tuple[Score, int | None, int | None]],
    campaigns: Iterable[Campaign],
    thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS,
) -> tuple[dict[str, Outcome], dict[str, int]]:
    """Step 1 of :func:`settle`: the outcomes, and when each member flagged only through its campaign was flagged
    (its events until then are counted by step 2, :func:`count_flagged`)."""
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
    return outcomes, flagged_at


def events_until(flagged_at: Mapping[str, int], rows: Iterable[Row]) -> dict[str, tuple[int | None, int]]:
    """Per account of ``flagged_at``: its first event's time and how many of its events came at or before its time
    (``rows`` in time order)."""
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
    return {account_id: (first.get(account_id), counts[account_id]) for account_id in flagged_at}


def count_flagged(
    outcomes: dict[str, Outcome], flagged_at: Mapping[str, int], until: Mapping[str, tuple[int | None, int]]
) -> None:
    """Step 2 of :func:`settle`: when each member flagged through its campaign counts as flagged, and after how many
    of its events (``until``: :func:`events_until`, or the same figures from another engine)."""
    for account_id, at in flagged_at.items():
        first, count = until[account_id]
        outcome = outcomes[account_id]
        outcome.first_flagged_us = max(at, first if first is not None else at)
        outcome.events_until_flagged = max(1, count)
