"""The console benchmark's verdicts: each account's online score (the rules over features drawn per population, with
the learned-model, campaign and partner-intel reasons in their real shapes), the campaigns as the clustering leaves
them (links with their evidence), and each account's scores over the week with the history rows they leave.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from console_world import ENTRY, HYDRA, Acct, Plan, Population
from distillguard.clusters.campaign import Campaign, cluster_id, inherit
from distillguard.clusters.evidence import KINDS
from distillguard.detect.features import FEATURES
from distillguard.detect.reasons import Reason
from distillguard.detect.rules import score_rules
from distillguard.detect.scorer import Score
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, FLAGGED, Verdict, verdict_for
from distillguard.simulate.clock import DAY_US, HOUR_US, MINUTE_US
from distillguard.simulate.models import NEW
from distillguard.timefmt import from_epoch_us

Ints = npt.NDArray[np.int64]

# ------------------------------------------------------------------------------------------------------ scores
# Feature values per population, drawn uniformly in these ranges (the rest from BENIGN): what the account-state
# features of each kind of traffic look like, so that the rules give each its usual risk and reasons.
BENIGN: dict[str, tuple[float, float]] = {
    "gap_cv": (0.3, 2.5), "hour_entropy": (0.5, 0.96), "active_hours_share": (0.1, 0.5),
    "top_template_share": (0.02, 0.3), "distinct_template_ratio": (0.3, 0.9), "content_novelty": (0.3, 0.95),
    "repeat_share": (0.0, 0.2), "domain_count": (1, 5), "domain_entropy": (0.05, 0.7),
    "single_turn_share": (0.3, 0.97), "cot_share": (0.0, 0.2), "training_data_share": (0.0, 0.06),
    "rubric_share": (0.0, 0.1), "logprob_harvest_share": (0.0, 0.05), "benchmark_share": (0.0, 0.01),
    "tools_share": (0.0, 0.1), "system_prompt_share": (0.0, 0.5), "distinct_system_prompts": (0, 3),
    "long_max_tokens_share": (0.0, 0.3), "temperature_zero_share": (0.0, 0.2), "out_in_ratio": (0.5, 4.0),
    "language_count": (1, 2), "rate_limited_share": (0.0, 0.03), "busy_minute_share": (0.0, 0.3),
    "new_model_pivot": (0.0, 0.3),
}  # fmt: skip
HARVEST: dict[str, tuple[float, float]] = {
    "gap_cv": (0.1, 0.6), "hour_entropy": (0.93, 0.99), "single_turn_share": (0.92, 1.0),
    "content_novelty": (0.88, 0.99), "domain_entropy": (0.55, 0.9), "domain_count": (4, 7),
    "top_template_share": (0.2, 0.6), "busy_minute_share": (0.4, 0.9), "long_max_tokens_share": (0.3, 0.9),
}  # fmt: skip
OVERRIDES: dict[str, dict[str, tuple[float, float]]] = {
    "casual_chat": {},
    "developer": {"tools_share": (0.0, 0.5), "system_prompt_share": (0.3, 0.9), "busy_minute_share": (0.0, 0.3)},
    "researcher": {"cot_share": (0.02, 0.3), "domain_entropy": (0.4, 0.8), "domain_count": (3, 7)},
    "business_app": {
        "system_prompt_share": (0.9, 1.0),
        "distinct_system_prompts": (1, 2),
        "domain_entropy": (0.0, 0.2),
        "hour_entropy": (0.9, 0.98),
        "busy_minute_share": (0.3, 0.9),
        "top_template_share": (0.5, 0.95),
    },
    "eval_run": {
        "benchmark_share": (0.5, 0.95),
        "temperature_zero_share": (0.8, 1.0),
        "busy_minute_share": (0.5, 0.95),
        "cot_share": (0.1, 0.5),
        "domain_entropy": (0.4, 0.8),
    },
    "solo_harvester": {**HARVEST, "rate_limited_share": (0.05, 0.3)},
    "cot_harvester": {**HARVEST, "cot_share": (0.5, 0.95)},
    "logprob_harvester": {**HARVEST, "logprob_harvest_share": (0.5, 0.95)},
    "slow_and_low": {**HARVEST, "gap_cv": (0.05, 0.3), "busy_minute_share": (0.0, 0.1)},
    "model_pivot": {**HARVEST, "new_model_pivot": (0.8, 1.0), "cot_share": (0.1, 0.6)},
    "self_instruct": {**HARVEST, "training_data_share": (0.3, 0.8)},
    "evol_paraphraser": {**HARVEST, "training_data_share": (0.1, 0.5), "top_template_share": (0.3, 0.7)},
    "rubric_grader": {**HARVEST, "rubric_share": (0.4, 0.9)},
    "reseller_mixed": {
        "cot_share": (0.1, 0.4),
        "training_data_share": (0.02, 0.2),
        "hour_entropy": (0.85, 0.97),
        "domain_entropy": (0.5, 0.85),
        "busy_minute_share": (0.3, 0.8),
    },
    # Hydra members each look mildly odd and small; the campaign as a whole is what convicts them.
    HYDRA: {
        "cot_share": (0.05, 0.45),
        "single_turn_share": (0.7, 1.0),
        "content_novelty": (0.7, 0.99),
        "domain_entropy": (0.3, 0.8),
        "training_data_share": (0.0, 0.1),
        "logprob_harvest_share": (0.0, 0.3),
    },
}
# Benign accounts that look partly like extraction (students asking for step-by-step answers, dataset builders,
# translators with one template): the false positives reviewers reverse, and the accounts that hover at the line.
BORDERLINE_SHARE = 0.025
BORDERLINE: dict[str, tuple[float, float]] = {
    "cot_share": (0.15, 0.5), "single_turn_share": (0.8, 1.0), "content_novelty": (0.7, 0.97),
    "domain_entropy": (0.3, 0.75), "training_data_share": (0.0, 0.15), "long_max_tokens_share": (0.2, 0.7),
    "top_template_share": (0.1, 0.4), "hour_entropy": (0.8, 0.97),
}  # fmt: skip
# What a campaign's union of traffic looks like (judged as one account, as clusters.campaign.judge does).
UNION: dict[str, tuple[float, float]] = {
    **HARVEST, "cot_share": (0.2, 0.9), "training_data_share": (0.0, 0.4), "logprob_harvest_share": (0.0, 0.5),
    "new_model_pivot": (0.0, 1.0), "rate_limited_share": (0.0, 0.05),
}  # fmt: skip


def _features(
    ranges: dict[str, tuple[float, float]], rng: random.Random, events: int, age_days: float, verified: bool
) -> dict[str, float]:
    f = dict.fromkeys(FEATURES, 0.0)
    for name, (lo, hi) in {**BENIGN, **ranges}.items():
        f[name] = (
            float(round(rng.uniform(lo, hi)))
            if name in ("domain_count", "distinct_system_prompts", "language_count")
            else rng.uniform(lo, hi)
        )
    f["log_events"] = math.log1p(events)
    f["log_tokens"] = math.log1p(events * rng.uniform(200, 900))
    f["account_age_days"] = age_days
    f["events_per_age_day"] = events / max(age_days, 1.0)
    f["verified"] = float(verified)
    return f


def own_score(a: Acct, rng: random.Random, at_us: int, model_version: str) -> Score:
    """The account's own online score: the rules over its features, and the learned model's view of it."""
    age = (at_us - a.profile.created_at_us) / DAY_US
    ranges = OVERRIDES.get(a.profile.population, {})
    if a.profile.label == "benign" and rng.random() < BORDERLINE_SHARE:
        ranges = {**ranges, **BORDERLINE}
    features = _features(ranges, rng, a.events, age, a.profile.verified)
    rules = score_rules(features)
    model_risk = min(0.999, max(0.001, rules.risk + rng.gauss(0.0, 0.04)))
    reasons = [
        *rules.reasons,
        Reason(
            "learned_model",
            round(model_risk, 4),
            f"the learned model ({model_version}) puts the risk at {model_risk:.2f}",
        ),
    ]
    return Score(
        a.profile.account_id, rules.risk, verdict_for(rules.risk), reasons, rules.risk, model_risk, at_us, a.events
    )


# --------------------------------------------------------------------------------------------------- campaigns
def _evidence(kind: str, score: float, detail: str) -> dict[str, Any]:
    return {"kind": kind, "category": KINDS[kind].category, "score": round(score, 3), "detail": detail}


def _link_evidence(plan: Plan, a: Acct, b: Acct, templates: Sequence[str], rng: random.Random) -> list[dict[str, Any]]:
    """The evidence on one member pair, in the words ``clusters.evidence`` uses."""
    pa, pb = a.profile, b.profile
    out: list[dict[str, Any]] = []
    if pa.payment_fingerprint is not None and pa.payment_fingerprint == pb.payment_fingerprint:
        out.append(_evidence("shared_payment", 1.0, f"payment fingerprint {pa.payment_fingerprint[:16]}"))
    apart = abs(pa.created_at_us - pb.created_at_us)
    if apart <= 2 * HOUR_US:
        if pa.email_domain == pb.email_domain and plan.operation is not None:
            out.append(
                _evidence("signup_burst", 1.0, f"created {apart // MINUTE_US} min apart, both @{pa.email_domain}")
            )
        else:
            out.append(_evidence("signup_burst", 0.4, f"created {apart // MINUTE_US} min apart"))
    if plan.operation is None:  # a team: one system prompt, one office network
        out.append(
            _evidence(
                "shared_system_prompt",
                rng.uniform(0.4, 0.9),
                f"system prompt {templates[0]} (shared by {len(plan.members)} accounts)",
            )
        )
        out.append(
            _evidence(
                "shared_prefix",
                rng.uniform(0.2, 0.6),
                f"network {a.ips[0].rsplit('.', 1)[0]}.0/24 (shared by {len(plan.members)} accounts)",
            )
        )
        return out
    shared_ips = sorted(set(a.ips) & set(b.ips))
    if shared_ips:
        more = f" and {len(shared_ips) - 1} more" if len(shared_ips) > 1 else ""
        out.append(
            _evidence(
                "shared_ip",
                min(1.0, 0.3 * len(shared_ips)),
                f"address {shared_ips[0]}{more} (shared by {rng.randrange(2, 9)} accounts)",
            )
        )
    if a.agents[0] == b.agents[0]:
        out.append(
            _evidence(
                "shared_user_agent",
                rng.uniform(0.3, 0.9),
                f"user agent {a.agents[0][:60]} (shared by {rng.randrange(2, 40)} accounts)",
            )
        )
    template = templates[rng.randrange(len(templates))]
    na, nb = max(a.events, 1), max(b.events, 1)
    out.append(
        _evidence(
            "shared_template",
            rng.uniform(0.5, 1.0),
            f"template {template} is {rng.randint(1, na)}/{na} and {rng.randint(1, nb)}/{nb} of their calls",
        )
    )
    if rng.random() < 0.6:
        out.append(
            _evidence(
                "partitioned_sweep",
                rng.uniform(0.3, 0.9),
                f"template {template}: {rng.randint(3, na + 2)} and {rng.randint(3, nb + 2)} distinct items, "
                "none in common",
            )
        )
    common = rng.randrange(3, 40)
    detail = f"active in {common} of the same 2-minute windows (chance: {rng.uniform(0.05, 1.5):.1f})"
    if rng.random() < 0.3:
        detail += "; started and stopped within 10 min of each other"
    out.append(_evidence("synchronised", min(1.0, rng.uniform(0.3, 1.2)), detail))
    if plan.operation.adoption.adopt_after_h is not None and rng.random() < 0.7:
        out.append(
            _evidence(
                "coordinated_pivot",
                1.0,
                f"both moved to {NEW} {plan.operation.adoption.adopt_after_h:.1f} h after it appeared",
            )
        )
    return out


def link(plan: Plan, pop: Population, templates: Sequence[str], rng: random.Random) -> None:
    """Member pairs the clustering linked: a chain through all members plus a few random pairs per member (as dense
    as Leiden communities of harvesting accounts come out), each with its evidence and weight."""
    members = plan.members
    pairs: set[tuple[int, int]] = set()
    order = members[:]
    rng.shuffle(order)
    for x, y in itertools.pairwise(order):
        pairs.add((min(x, y), max(x, y)))
    for m in members:
        for _ in range(rng.randrange(1, 5)):
            other = members[rng.randrange(len(members))]
            if other != m:
                pairs.add((min(m, other), max(m, other)))
    plan.strength = dict.fromkeys(members, 0.0)
    for x, y in sorted(pairs):
        evidence = _link_evidence(plan, pop.accts[x], pop.accts[y], templates, rng)
        weight = round(sum(KINDS[e["kind"]].weight * e["score"] for e in evidence), 3)
        plan.links.append(
            {
                "a": pop.accts[x].profile.account_id,
                "b": pop.accts[y].profile.account_id,
                "weight": weight,
                "evidence": evidence,
            }
        )
        plan.strength[x] += weight
        plan.strength[y] += weight


def describe(
    plan: Plan, pop: Population, score: Score, first_us: int, last_us: int, tokens: int, capabilities: dict[str, int]
) -> Campaign:
    """The campaign as ``clusters.campaign.describe`` and ``judge`` leave it (evidence tallied over the links)."""
    tally: Counter[str] = Counter()
    examples: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for lk in plan.links:
        for e in lk["evidence"]:
            tally[e["kind"]] += 1
            examples[e["kind"]].append((e["score"], f"{lk['a']} ~ {lk['b']}: {e['detail']}"))
    evidence = [
        {
            "kind": kind,
            "category": KINDS[kind].category,
            "meaning": KINDS[kind].meaning,
            "links": count,
            "examples": [d for _, d in sorted(examples[kind], key=lambda x: -x[0])[:3]],
        }
        for kind, count in sorted(tally.items(), key=lambda kv: -kv[1] * KINDS[kv[0]].weight)
    ]
    ids = [pop.accts[m].profile.account_id for m in plan.members]
    return Campaign(
        cluster_id=plan.cluster_id,
        members=ids,
        strength={pop.accts[m].profile.account_id: s for m, s in plan.strength.items()},
        events=sum(pop.accts[m].events for m in plan.members),
        tokens=tokens,
        first_us=first_us,
        last_us=last_us,
        capabilities=capabilities,
        evidence=evidence,
        unavailable={},
        score=score,
        first_flagged_us=plan.found_us if score.verdict in FLAGGED else None,
    )


# --------------------------------------------------------------------------------------------------- judgement
MODEL_VERSION = "risk-v1"
HISTORY_STEP = 0.05
HOVER_FROM = 0.1
HOVER_SIGMA = 0.5


def judge(
    pop: Population, first: Ints, last: Ints, end_us: int, rng: random.Random
) -> tuple[dict[int, Score], dict[int, Campaign]]:
    """Every account's final score and every campaign, judged: own scores, campaign verdicts, what members inherit."""
    finals = {
        a.index: own_score(a, rng, int(min(last[a.index], end_us - 1)), MODEL_VERSION) for a in pop.accts if a.events
    }
    tokens_of: Counter[int] = Counter()
    domains_of: dict[int, Counter[str]] = defaultdict(Counter)
    domain_at = ENTRY.index("sig_domain")
    for _, index, ok, *_ in pop.hydra_calls:
        tokens_of[index] += (ok[5] or 0) + (ok[6] or 0)
        domains_of[index][ok[domain_at]] += 1
    template_at = ENTRY.index("sig_template_id")
    found: dict[int, Campaign] = {}
    for i, plan in enumerate(pop.plans):
        first_us = int(min(first[m] for m in plan.members))
        last_us = int(max(last[m] for m in plan.members))
        # The clustering job runs hourly; a campaign shows once its members have a few hours of traffic together.
        found_us = (first_us + int(rng.uniform(4, 36) * HOUR_US)) // HOUR_US * HOUR_US + HOUR_US
        if found_us >= end_us:
            continue
        plan.found_us = found_us
        ids = [pop.accts[m].profile.account_id for m in plan.members]
        plan.cluster_id = cluster_id(ids)
        pool = pop.pools[pop.accts[plan.members[0]].pool]
        templates = sorted({str(e[template_at]) for e in pool.ok}) or ["0000000000000000"]
        link(plan, pop, templates[:6], rng)
        events = sum(pop.accts[m].events for m in plan.members)
        created = min(pop.accts[m].profile.created_at_us for m in plan.members)
        ranges = UNION if plan.operation is not None else OVERRIDES["developer"]
        union = _features(ranges, rng, events, (last_us - created) / DAY_US, False)
        rules = score_rules(union)
        plan.risk, plan.verdict = rules.risk, verdict_for(rules.risk)
        score = Score(plan.cluster_id, rules.risk, plan.verdict, rules.reasons, rules.risk, None, last_us, events)
        domains: Counter[str] = Counter()
        for m in plan.members:
            domains.update(domains_of.get(m, Counter({"general": pop.accts[m].events})))
        tokens = sum(tokens_of.get(m, pop.accts[m].events * 400) for m in plan.members)
        campaign = describe(plan, pop, score, first_us, last_us, tokens, dict(domains.most_common()))
        found[i] = campaign
        for m in plan.members:
            own = finals[m]
            risk, verdict, reason = inherit(own, campaign)
            campaign.member_verdicts[own.account_id] = verdict
            if reason is not None:
                finals[m] = Score(
                    own.account_id,
                    risk,
                    verdict,
                    [*own.reasons, reason],
                    own.rules_risk,
                    own.model_risk,
                    own.at_us,
                    own.events,
                )
    return finals, found


def paths(
    pop: Population, finals: dict[int, Score], first: Ints, last: Ints, end_us: int, rng: random.Random
) -> tuple[dict[int, list[tuple[int, float, Verdict]]], list[dict[str, Any]]]:
    """Each account's scores over its week (one per rescoring round kept when it matters), and the history rows:
    a row when the verdict changes or the risk moves by at least 0.05 (the writer's rule)."""
    history: list[dict[str, Any]] = []
    moving: dict[int, list[tuple[int, float, Verdict]]] = {}
    for index, final in finals.items():
        a = pop.accts[index]
        t0, t1 = int(first[a.index]), int(min(last[a.index], end_us - 1))
        suspicious = final.verdict != "allow"
        # Accounts near the watch line wobble across it while their history is short (shares over few calls):
        # the escalate-then-expire churn that fills most of a real audit trail.
        hovering = not suspicious and final.rules_risk >= HOVER_FROM
        k = max(1, min(16 if hovering else 10, a.events // 8))
        found = pop.plans[a.campaign].found_us if a.campaign >= 0 and pop.plans[a.campaign].found_us else None
        own_final = final.rules_risk
        points: list[tuple[int, float, Verdict]] = []
        for i in range(k):
            t = t1 if i == k - 1 else t0 + (t1 - t0) * (i + 1) // k
            if i == k - 1:
                risk = final.risk
            elif suspicious:
                risk = own_final * (0.35 + 0.65 * (i + 1) / k)
                if found is not None and t >= found:
                    risk = max(risk, final.risk)
            else:
                wobble = rng.lognormvariate(0.0, HOVER_SIGMA) if hovering else 1 + rng.gauss(0.0, 0.08)
                risk = min(0.999, max(0.0005, own_final * wobble))
            points.append((t, risk, verdict_for(risk)))
        written: tuple[float, Verdict] | None = None
        for t, risk, verdict in points:
            if written is None or verdict != written[1] or abs(risk - written[0]) >= HISTORY_STEP:
                history.append(
                    {"account_id": final.account_id, "at": from_epoch_us(t), "risk": round(risk, 6), "verdict": verdict}
                )
                written = (risk, verdict)
        if any(v != "allow" for _, _, v in points):
            moving[a.index] = points
    return moving, history


# ----------------------------------------------------------------------------------------------------- intel
PARTNERS = (("Aurora Labs", 0.6), ("Northwind Models", 0.5))
INTEL_SHARE = 0.15  # of the flagged hydra campaigns, the share a partner saw too
PARTNER_KINDS = ("payment fingerprints", "sign-up e-mail domains", "prompt template", "network prefixes")


@dataclass(frozen=True)
class Report:
    plan: int
    partner: int
    received_us: int
    partner_cluster: str


def partner_reports(
    pop: Population, found: dict[int, Campaign], finals: dict[int, Score], end_us: int, rng: random.Random
) -> list[Report]:
    """Which of our campaigns partners reported too, and the reason each member's score gets from it (the shape
    ``intel.trust`` gives: corroborated by our own detection, lifted to just below challenge)."""
    reports: list[Report] = []
    candidates = [i for i in found if pop.plans[i].operation is not None and pop.plans[i].verdict in FLAGGED]
    chosen = sorted(rng.sample(candidates, max(1, round(INTEL_SHARE * len(candidates))))) if candidates else []
    for i in chosen:
        partner = rng.randrange(len(PARTNERS))
        plan = pop.plans[i]
        theirs = cluster_id([f"{PARTNERS[partner][0]}:{m}" for m in found[i].members])
        received = min(end_us - MINUTE_US, plan.found_us + int(rng.uniform(1, 48) * HOUR_US))
        reports.append(Report(i, partner, received, theirs))
        name, weight = PARTNERS[partner]
        kinds = ", ".join(sorted(rng.sample(PARTNER_KINDS, rng.randrange(1, 4))))
        for m in plan.members:
            score = finals[m]
            evidence = weight * rng.uniform(0.5, 0.9)
            corroborated = score.risk >= DEFAULT_THRESHOLDS["watch"]
            cap = (DEFAULT_THRESHOLDS["degrade"] if corroborated else DEFAULT_THRESHOLDS["throttle"]) - 1e-6
            risk = max(score.risk, min(1 - (1 - score.risk) * (1 - evidence), cap))
            why = (
                f"corroborated by our own detection (risk {score.risk:.2f} before partner intel)"
                if corroborated
                else "not corroborated (one partner, no extraction signal of our own): watch only"
            )
            detail = f"partner intel on campaign {theirs}: {name} (weight {weight:.2f}): {kinds}; {why}"
            lift = math.log(risk / (1 - risk)) - math.log(score.risk / (1 - score.risk))
            reason = Reason("partner_intel", round(evidence, 4), detail, round(lift, 4))
            finals[m] = Score(
                score.account_id,
                risk,
                verdict_for(risk),
                [*score.reasons, reason],
                score.rules_risk,
                score.model_risk,
                score.at_us,
                score.events,
            )
    return reports
