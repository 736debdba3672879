"""Campaigns: linked accounts judged as one, and what each member inherits from the whole.

A campaign's risk is the risk of the union of its members' traffic, scored by the same scorer as one account
(what the campaign extracted together: 300 accounts of 40 CoT calls each are one harvester of 12,000). A member
inherits that risk in proportion to how firmly it is linked (``share``): a member tied by several kinds of
evidence takes the campaign's verdict, one hanging on a single link takes a fraction of it. The reason it gets
names the campaign, its size and the evidence, so a reviewer can check it.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from distillguard.clusters.evidence import KINDS, Link
from distillguard.clusters.graph import Community
from distillguard.clusters.profile import AccountProfile
from distillguard.detect.reasons import Reason
from distillguard.detect.scorer import AccountInfo, OnlineScorer, Score
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, FLAGGED, Verdict, verdict_for
from distillguard.events.readers import Row
from distillguard.timefmt import rfc3339_from_epoch_us

# A member whose links to the others sum to this (about two solid kinds of evidence) inherits the whole risk.
FULL_SHARE_STRENGTH = 4.0
EXAMPLES_PER_KIND = 3
# The weight of the campaign reason at full share: above the scorer's bar for an explained verdict.
CAMPAIGN_REASON_WEIGHT = 2.0
FLUSH_EVERY = 256
# Member pairs kept with their evidence (the strongest): the console draws them, an evidence pack cites them. A
# campaign of 20,000 accounts has tens of thousands; the rest are counted in ``links_omitted``.
MAX_LINKS = 2000


@dataclass
class Campaign:
    cluster_id: str
    members: list[str]
    strength: dict[str, float]
    events: int
    tokens: int
    first_us: int
    last_us: int
    capabilities: dict[str, int]
    evidence: list[dict[str, Any]]
    unavailable: dict[str, int]
    # The linked member pairs, strongest first (at most MAX_LINKS), and how many more there were.
    links: list[dict[str, Any]] = field(default_factory=list)
    links_omitted: int = 0
    score: Score | None = None
    first_flagged_us: int | None = None
    member_verdicts: dict[str, Verdict] = field(default_factory=dict)

    def share(self, account_id: str) -> float:
        return min(1.0, self.strength.get(account_id, 0.0) / FULL_SHARE_STRENGTH)

    @property
    def verdict(self) -> Verdict:
        return self.score.verdict if self.score is not None else "allow"

    def summary(self) -> str:
        kinds = ", ".join(e["kind"] for e in self.evidence[:4])
        return f"campaign {self.cluster_id}: {len(self.members)} accounts, {self.events} calls together; {kinds}"

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "size": len(self.members),
            "risk": round(self.score.risk, 6) if self.score is not None else None,
            "verdict": self.verdict,
            "first_flagged_at": rfc3339_from_epoch_us(self.first_flagged_us) if self.first_flagged_us else None,
            "events": self.events,
            "tokens": self.tokens,
            "first_seen": rfc3339_from_epoch_us(self.first_us),
            "last_seen": rfc3339_from_epoch_us(self.last_us),
            "capabilities": self.capabilities,
            "evidence": self.evidence,
            "unavailable_evidence": self.unavailable,
            "reasons": [r.to_json() for r in self.score.reasons] if self.score is not None else [],
            "members": [
                {"account_id": m, "link_strength": round(self.strength[m], 3), "verdict": self.member_verdicts.get(m)}
                for m in self.members
            ],
            "links": self.links,
            "links_omitted": self.links_omitted,
        }


def cluster_id(members: Iterable[str]) -> str:
    """A stable id: the same members give the same id in every run."""
    digest = hashlib.blake2b("\n".join(sorted(members)).encode(), digest_size=6, person=b"dg-cluster").hexdigest()
    return "clu_" + digest


def describe(community: Community, profiles: list[AccountProfile]) -> Campaign:
    members = [profiles[i] for i in community.members]
    names = [p.account_id for p in members]
    tally: dict[str, int] = Counter()
    examples: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for lk in community.links:
        pair = f"{profiles[lk.a].account_id} ~ {profiles[lk.b].account_id}"
        for e in lk.evidence:
            tally[e.kind] += 1
            examples[e.kind].append((e.strength, f"{pair}: {e.detail}"))
    evidence = [
        {
            "kind": kind,
            "category": KINDS[kind].category,
            "meaning": KINDS[kind].meaning,
            "links": count,
            "examples": [d for _, d in sorted(examples[kind], key=lambda x: -x[0])[:EXAMPLES_PER_KIND]],
        }
        for kind, count in sorted(tally.items(), key=lambda kv: -kv[1] * KINDS[kv[0]].weight)
    ]
    links = sorted(community.links, key=lambda lk: (-lk.weight, lk.a, lk.b))
    unavailable: Counter[str] = Counter()
    for p in members:
        unavailable.update(p.unavailable())
    domains: Counter[str] = Counter()
    for p in members:
        domains.update(p.domains)
    return Campaign(
        cluster_id=cluster_id(names),
        members=names,
        strength={profiles[i].account_id: community.strength[i] for i in community.members},
        events=sum(p.events for p in members),
        tokens=sum(p.tokens for p in members),
        first_us=min(p.first_us for p in members),
        last_us=max(p.last_us for p in members),
        capabilities=dict(domains.most_common()),
        evidence=evidence,
        unavailable=dict(unavailable),
        links=[edge(lk, profiles) for lk in links[:MAX_LINKS]],
        links_omitted=max(0, len(links) - MAX_LINKS),
    )


def edge(lk: Link, profiles: list[AccountProfile]) -> dict[str, Any]:
    """A link as the console and evidence packs show it: the two accounts, its weight, and each piece of evidence."""
    return {
        "a": profiles[lk.a].account_id,
        "b": profiles[lk.b].account_id,
        "weight": round(lk.weight, 3),
        "evidence": [
            {"kind": e.kind, "category": KINDS[e.kind].category, "score": round(e.score, 3), "detail": e.detail}
            for e in sorted(lk.evidence, key=lambda e: -e.score)
        ],
    }


def judge(
    campaigns: list[Campaign],
    rows: Iterable[Row],
    profiles: Mapping[str, AccountProfile],
    scorer: OnlineScorer,
) -> None:
    """Score each campaign on the union of its members' traffic (``rows`` in time order), through ``scorer`` (a
    fresh one: campaigns are its accounts)."""
    of: dict[str, str] = {}
    for c in campaigns:
        for m in c.members:
            of[m] = c.cluster_id
        created = traffic_weighted_creation([profiles[m] for m in c.members])
        scorer.set_account(
            c.cluster_id,
            AccountInfo(
                datetime.fromtimestamp(created / 1e6, UTC) if created is not None else None,
                all(profiles[m].verified for m in c.members),
            ),
        )
    seen = 0
    for ts_us, account_id, status, prompt_tokens, completion_tokens, model, signals, _ in rows:
        cid = of.get(account_id)
        if cid is None:
            continue
        scorer.observe(cid, ts_us, signals, status, prompt_tokens, completion_tokens, model)
        seen += 1
        if seen % FLUSH_EVERY == 0:
            scorer.flush()
    scorer.flush()
    by_id = {c.cluster_id: c for c in campaigns}
    for score, first, _ in scorer.final_scores():
        campaign = by_id[score.account_id]
        campaign.score = score
        campaign.first_flagged_us = first


def traffic_weighted_creation(members: Sequence[AccountProfile]) -> int | None:
    """When a campaign's accounts were created, as its traffic sees it: the creation time of the member that carries
    the median call (members ordered by creation). The oldest member's would let a hydra look established by
    linking one old account that sends a handful of calls (measured: it took a test campaign from block to allow);
    by traffic, the accounts that do the harvesting set the age. None when members of unknown age carry half the
    calls or more."""
    total = sum(p.events for p in members)
    known = sorted((p.created_us, p.events) for p in members if p.created_us is not None)
    seen = 0
    for created_us, events in known:
        seen += events
        if 2 * seen > total:
            return created_us
    return None


def suspicious(own: Score, thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS) -> bool:
    """Whether an account's own score (the learned model's, or the rules' without a model) reaches ``watch``: the
    condition for its campaign to bear on it (:func:`inherit`)."""
    suspicion = own.model_risk if own.model_risk is not None else own.risk
    return suspicion >= thresholds.get("watch", 0.0)


def inherit(
    own: Score, campaign: Campaign, thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS
) -> tuple[float, Verdict, Reason | None]:
    """A member's risk and verdict given its campaign's, and the reason to add when the campaign bears on it.

    The campaign explains a member's own suspicion; it never convicts an account whose own traffic looks
    legitimate. A member is raised only when its own score (the learned model's, or the rules' without a model)
    reaches ``watch``: hydra members each look mildly odd and unexplained alone, while a developer who shares an
    office NAT, a coding template and a system prompt with a reseller's harvesting accounts looks normal, and the
    union of many people's traffic (round the clock, broad) can look like a bot when it is not.
    """
    if campaign.score is None or campaign.verdict not in FLAGGED:
        return own.risk, own.verdict, None
    share = campaign.share(own.account_id)
    eligible = suspicious(own, thresholds)
    inherited = campaign.score.risk * share if eligible else 0.0
    why = "" if eligible else "; not applied: this account's own traffic does not look suspicious"
    reason = Reason(
        "campaign",
        round(campaign.score.risk, 4),
        f"{campaign.summary()}; campaign verdict {campaign.verdict}, this account's link strength "
        f"{campaign.strength[own.account_id]:.1f} ({share:.0%} share){why}",
        round(CAMPAIGN_REASON_WEIGHT * share, 3) if eligible else 0.0,
    )
    if inherited <= own.risk:
        return own.risk, own.verdict, reason
    return inherited, verdict_for(inherited, thresholds), reason
