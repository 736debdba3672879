"""From replayed events to judged campaigns: profiles, the account graph, communities, the union scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from distillguard.clusters.campaign import Campaign, describe, judge
from distillguard.clusters.graph import communities
from distillguard.clusters.profile import AccountProfile
from distillguard.detect.scorer import OnlineScorer
from distillguard.events.readers import Row
from distillguard.store.models import Account


@dataclass
class ClusterStats:
    accounts: int = 0
    pairs_tested: int = 0
    links: int = 0
    campaigns: int = 0
    clustered_accounts: int = 0


def build_profiles(rows: Iterable[Row], accounts: Mapping[str, Account]) -> dict[str, AccountProfile]:
    profiles: dict[str, AccountProfile] = {}
    for ts_us, account_id, _, prompt_tokens, completion_tokens, model, signals, client in rows:
        profile = profiles.get(account_id)
        if profile is None:
            profile = profiles[account_id] = AccountProfile(account_id)
            meta = accounts.get(account_id)
            if meta is not None:
                profile.apply(meta)
        profile.add(ts_us, signals, client, model, (prompt_tokens or 0) + (completion_tokens or 0))
    return profiles


def find_campaigns(
    rows: Callable[[], Iterable[Row]], accounts: Mapping[str, Account], scorer: OnlineScorer, seed: int = 0
) -> tuple[list[Campaign], ClusterStats]:
    """Campaigns among the accounts of the events, each judged on its members' union traffic by ``scorer`` (a
    fresh scorer: campaigns become its accounts).

    ``rows()`` gives the events in time order; it is called twice (profiles, then the campaigns' union replay), so
    a log far larger than memory can be streamed from disk both times.
    """
    profiles = build_profiles(rows(), accounts)
    campaigns, stats = link_campaigns(profiles, seed)
    judge(campaigns, rows(), profiles, scorer)
    rank_campaigns(campaigns)
    return campaigns, stats


def link_campaigns(profiles: Mapping[str, AccountProfile], seed: int = 0) -> tuple[list[Campaign], ClusterStats]:
    """The campaigns among the profiled accounts, described but not yet judged (however the profiles were built)."""
    ordered = [profiles[a] for a in sorted(profiles)]
    found, pairs = communities(ordered, seed)
    campaigns = [describe(c, ordered) for c in found]
    stats = ClusterStats(
        accounts=len(ordered),
        pairs_tested=pairs,
        links=sum(len(c.links) for c in found),
        campaigns=len(campaigns),
        clustered_accounts=sum(len(c.members) for c in campaigns),
    )
    return campaigns, stats


def rank_campaigns(campaigns: list[Campaign]) -> None:
    """Judged campaigns, riskiest (then largest) first."""
    campaigns.sort(key=lambda c: (-(c.score.risk if c.score else 0.0), -len(c.members)))
