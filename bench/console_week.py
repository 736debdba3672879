"""The console benchmark's state store: accounts and keys, the case book's week replayed through the real
``CaseBook`` on a simulated clock, partner intel through ``IntelStore.ingest``, watermark and provenance checks, scores,
history and campaigns.
"""

from __future__ import annotations

import heapq
import math
import random
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import Engine, event, insert

from console_verdicts import PARTNERS, Report
from console_world import ENTRY, Population, fingerprint
from distillguard.clusters.campaign import Campaign
from distillguard.config import DetectConfig, IntelConfig, Level, RespondConfig
from distillguard.detect.scorer import Score
from distillguard.detect.verdicts import FLAGGED, Verdict
from distillguard.events.schema import Event
from distillguard.events.signals import SIGNAL_COLUMNS
from distillguard.intel.export import CampaignExporter, ExportPolicy
from distillguard.intel.facts import gather
from distillguard.intel.member import Member, load_member
from distillguard.intel.signing import parse_public_key
from distillguard.intel.store import IntelStore
from distillguard.respond.book import CaseBook, CaseError
from distillguard.respond.standing import Change, Standing
from distillguard.simulate.clock import HOUR_US, MINUTE_US, US
from distillguard.simulate.responses import synthesize
from distillguard.store import keys as keyfmt
from distillguard.store.models import Account
from distillguard.store.schema import accounts, api_keys, campaign_members, campaigns, score_history, scores
from distillguard.store.secret import load_or_create_secret
from distillguard.store.state import StateStore, store_engine
from distillguard.timefmt import from_epoch_us
from distillguard.watermark.provenance import ProvenanceReport, probe_prompts
from distillguard.watermark.text import derive_key, detect, mark

GROUP_KEY = "5c" * 32  # the sharing group's key: ours and the partners' (intel identifiers are keyed with it)
STATE_CHUNK = 5_000


# ---------------------------------------------------------------------------------------- the case book's week
BLOCK_ON_CONFIRM = 0.5
REVIEWERS = ("ana.silva", "j.okafor", "m.tanaka", "r.haddad", "l.novak")
CONFIRM = (
    "step-by-step harvesting across unrelated domains; no product behind the traffic",
    "same templates and cards as the rest of the campaign; a sweep of a public dataset",
    "log-probability harvesting with one-token completions, confirmed on samples",
    "self-instruct generation at volume, sampled 20 exchanges: training data, not use",
    "sign-up wave on a throwaway domain, synchronised pulses; classic hydra",
)
REVERSE = (
    "known evaluation partner; the benchmark run was announced to their account manager",
    "university lab running an approved study; verified by phone with the PI",
    "reseller under contract: the traffic is their customers', not extraction",
    "customer's support bot: the template is their product, volumes match their plan",
)
ESCALATE = (
    "enterprise customer: needs the account manager's sign-off before we act",
    "mixed traffic, partly legitimate; second opinion please",
    "possible overlap with a partner's report; checking with the intel lead",
)
APPEALS = (
    "We are a research group benchmarking reasoning quality; please restore our access.",
    "Our app sends the same prompt template for every user, that is how it works.",
    "This account is used by our QA team for regression tests before each release.",
)


class Clock:
    """The simulated wall clock the case book and the check recorder read (patched in for the build)."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def __call__(self) -> datetime:
        return from_epoch_us(self.now_us)


@dataclass
class Week:
    """What the case book's week left: each account's levels over time (for the events' statuses) and counts."""

    levels: dict[str, list[tuple[int, str]]]
    counts: dict[str, int]


def run_week(
    book: CaseBook,
    clock: Clock,
    pop: Population,
    paths: dict[int, list[tuple[int, float, Verdict]]],
    finals: dict[int, Score],
    end_us: int,
    rng: random.Random,
) -> Week:
    """Replay the week through the case book: scores move standings (batched per minute, as the gateway's responder
    does), campaigns open cases, reviewers decide some of them, customers appeal some decisions."""
    heap: list[tuple[int, int, str, tuple[Any, ...]]] = []
    order = 0

    def push(t: int, kind: str, *payload: Any) -> None:
        nonlocal order
        if t < end_us:
            heapq.heappush(heap, (t, order, kind, payload))
            order += 1

    for index, path in paths.items():
        signals = [r.signal for r in finals[index].reasons]
        for t, risk, verdict in path:
            push(t, "score", index, risk, verdict, signals)
    for i, plan in enumerate(pop.plans):
        if plan.found_us and plan.verdict in FLAGGED:
            push(plan.found_us, "campaign", i)
    start = pop.world.start_us
    for h in range(1, int((end_us - start) // HOUR_US) + 1):
        push(start + h * HOUR_US, "expire")

    standings: dict[int, Standing] = {}
    by_id = {a.profile.account_id: a.index for a in pop.accts}
    pending: list[tuple[Standing, Change]] = []
    counts: Counter[str] = Counter()
    clock.now_us = start
    for name in REVIEWERS:
        book.create_admin_token(name, "operator:trust-and-safety")

    def schedule_review(case_id: str, t: int, campaign: bool) -> None:
        roll = rng.random()
        confirm, reverse, escalate = (0.6, 0.05, 0.15) if campaign else (0.45, 0.2, 0.1)
        delay = int(rng.lognormvariate(math.log(5 * HOUR_US), 1.0))
        if roll < confirm:
            push(t + delay, "review", case_id, "confirm")
        elif roll < confirm + reverse:
            push(t + delay, "review", case_id, "reverse")
        elif roll < confirm + reverse + escalate:
            push(t + delay, "review", case_id, "escalate")

    def resync(account_ids: Sequence[str]) -> None:
        for account_id in account_ids:
            index = by_id[account_id]
            stored = book.standing(account_id)
            if index in standings:
                stored.verdict = standings[index].verdict
            standings[index] = stored

    def flush(t: int) -> None:
        if not pending:
            return
        clock.now_us = t
        opened = book.record(list(pending))
        counts["changes"] += len(pending)
        pending.clear()
        for case_id in opened:
            schedule_review(case_id, t, campaign=False)

    while heap:
        t, _, kind, payload = heapq.heappop(heap)
        if kind != "score" or (pending and t // MINUTE_US != clock.now_us // MINUTE_US):
            flush(clock.now_us)
        clock.now_us = t
        if kind == "score":
            index, risk, verdict, signals = payload
            st = standings.get(index)
            if st is None:
                st = standings[index] = Standing(pop.accts[index].profile.account_id)
            change = book.transitions.on_verdict(st, verdict, risk, signals, t)
            if change is not None:
                pending.append((st, change))
        elif kind == "expire":
            for st in standings.values():
                change = book.transitions.expire(st, t)
                if change is not None:
                    pending.append((st, change))
            flush(t)
        elif kind == "campaign":
            plan = pop.plans[payload[0]]
            members = [pop.accts[m].profile.account_id for m in plan.members]
            reasons = sorted({e["kind"] for lk in plan.links for e in lk["evidence"]})
            case = book.open_campaign_case(
                plan.cluster_id, members, plan.verdict, round(plan.risk, 4), reasons, "system:clusters"
            )
            counts["campaign_cases"] += 1
            resync(members)
            schedule_review(case.case_id, t, campaign=True)
        elif kind == "review":
            case_id, decision = payload
            reviewer = REVIEWERS[rng.randrange(len(REVIEWERS))]
            try:
                if decision == "confirm":
                    # Reviewers often block a confirmed harvesting campaign outright rather than keep it degraded.
                    current = book.case(case_id)
                    stronger: Level | None = (
                        "block" if current.subject_kind == "campaign" and rng.random() < BLOCK_ON_CONFIRM else None
                    )
                    case = book.confirm(case_id, reviewer, rng.choice(CONFIRM), stronger)
                    if rng.random() < 0.12:
                        member = case.members[rng.randrange(len(case.members))]
                        push(t + int(rng.uniform(1, 72) * HOUR_US), "appeal", case_id, member)
                elif decision == "reverse":
                    case = book.reverse(case_id, reviewer, rng.choice(REVERSE))
                else:
                    case = book.escalate(case_id, reviewer, rng.choice(ESCALATE))
                    if rng.random() < 0.6:
                        later = "confirm" if rng.random() < 0.7 else "reverse"
                        push(t + int(rng.uniform(2, 48) * HOUR_US), "review", case_id, later)
            except CaseError:
                continue  # decided in the meantime (an appeal reopened it, or a second review came first)
            counts[f"reviews_{decision}"] += 1
            resync(case.members)
        elif kind == "appeal":
            case_id, member = payload
            try:
                book.appeal(
                    case_id, member, rng.choice(APPEALS), contact=f"ops@{pop.accts[by_id[member]].profile.email_domain}"
                )
            except CaseError:
                continue
            counts["appeals"] += 1
            resync(book.case(case_id).members)
            if rng.random() < 0.7:
                push(
                    t + int(rng.uniform(1, 24) * HOUR_US),
                    "review",
                    case_id,
                    "reverse" if rng.random() < 0.5 else "confirm",
                )
    flush(clock.now_us)
    levels: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for entry in book.audit(limit=10_000_000):
        if entry.account_id is not None and entry.action.startswith("level_") and "to" in entry.detail:
            levels[entry.account_id].append((int(entry.at.timestamp() * US), str(entry.detail["to"])))
    counts["standings"] = len(standings)
    return Week(dict(levels), dict(counts))


def _event(pop: Population, call: tuple[Any, ...], prefix: str, n: int) -> Event:
    """A hydra member's call as the partner's gateway logged it (under the partner's own account id)."""
    ts, index, ok, *_ = call
    a = pop.accts[index]
    sig = ok[len(ENTRY) - len(SIGNAL_COLUMNS) :]
    from distillguard.events.signals import from_row

    return Event(
        event_id=f"req_{ts:013x}{n:011x}",
        ts_us=ts,
        endpoint=ok[0],
        request_raw=ok[4],
        account_id=f"{prefix}:{a.profile.account_id}",
        client_ip=a.ips[n % len(a.ips)],
        user_agent=a.agents[0],
        client_fingerprint=fingerprint(a.agents[0]),
        model=ok[1],
        status=200,
        prompt_tokens=ok[5],
        completion_tokens=ok[6],
        signals=from_row(tuple(sig)),
    )


def ingest_intel(
    engine: Engine, clock: Clock, pop: Population, found: dict[int, Campaign], reports: list[Report], partners_dir: Path
) -> dict[str, int]:
    """Each partner exports its reports with the real STIX exporter (signed, identifiers keyed with the group key);
    we receive and verify them through ``IntelStore.ingest`` at the time they arrived."""
    members = [
        load_member(IntelConfig(provider_name=name, group_key=GROUP_KEY), partners_dir / f"partner{i}")
        for i, (name, _) in enumerate(PARTNERS)
    ]
    keys = {m.identity_id: parse_public_key(m.public_key) for m in members}
    store = IntelStore(engine)
    calls_of: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for call in pop.hydra_calls:
        calls_of[call[1]].append(call)
    totals: Counter[str] = Counter()
    for report in sorted(reports, key=lambda r: r.received_us):
        member: Member = members[report.partner]
        prefix = PARTNERS[report.partner][0]
        campaign = found[report.plan].to_json()
        campaign["cluster_id"] = report.partner_cluster
        campaign["members"] = [{**m, "account_id": f"{prefix}:{m['account_id']}"} for m in campaign["members"]]
        plan = pop.plans[report.plan]
        events = [_event(pop, c, prefix, n) for n, c in enumerate(c for m in plan.members for c in calls_of[m])]
        events.sort(key=lambda e: e.ts_us)
        accounts_meta = {
            f"{prefix}:{pop.accts[m].profile.account_id}": Account(
                f"{prefix}:{pop.accts[m].profile.account_id}",
                payment_fingerprint=pop.accts[m].profile.payment_fingerprint,
                email_domain=pop.accts[m].profile.email_domain,
            )
            for m in plan.members
        }
        facts, outsiders = gather(events, [campaign], accounts_meta, 5, False)
        clock.now_us = report.received_us
        bundle = CampaignExporter(member, ExportPolicy(), from_epoch_us(report.received_us)).bundle(
            [(campaign, facts[report.partner_cluster])], outsiders
        )
        result = store.ingest(bundle["objects"], keys)
        totals["accepted"] += result.accepted
        totals["rejected"] += len(result.rejected)
    return dict(totals)


def partner_config(partners_dir: Path) -> dict[str, Any]:
    """The [intel] section that trusts the simulated partners (written to the data dir's distillguard.toml)."""
    members = [
        load_member(IntelConfig(provider_name=name, group_key=GROUP_KEY), partners_dir / f"partner{i}")
        for i, (name, _) in enumerate(PARTNERS)
    ]
    return {
        "provider_name": "console bench deployment",
        "group_key": GROUP_KEY,
        "partners": [
            {"name": name, "identity": m.identity_id, "public_key": m.public_key, "weight": weight}
            for m, (name, weight) in zip(members, PARTNERS, strict=True)
        ],
    }


# ------------------------------------------------------------------------------------------------------ checks
SUSPECTS = ("copycat-7b", "openmimic-13b", "distilled-chat-v2", "budget-reasoner")


def record_checks(engine: Engine, clock: Clock, pop: Population, secret: bytes, end_us: int, rng: random.Random) -> int:
    """Watermark checks of texts found elsewhere (some carry our watermark under a campaign's key, most do not) and
    provenance tests of suspect models, with real detections and exact p-values, at times during the week."""
    from distillguard.watermark.checks import record_check

    flagged = [p for p in pop.plans if p.found_us and p.verdict in FLAGGED]
    deployment = derive_key(secret, "deployment")
    prose = [synthesize("chat", "en", 400, None, rng.getrandbits(62)).text or "" for _ in range(12)]
    start = pop.world.start_us
    n = max(4, len(pop.plans))
    times = sorted(start + rng.randrange(end_us - start) for _ in range(n))
    for t in times:
        clock.now_us = t
        if rng.random() < 0.75 and flagged:
            plan = flagged[rng.randrange(len(flagged))]
            key = derive_key(secret, f"cluster:{plan.cluster_id}")
            text = prose[rng.randrange(len(prose))]
            if rng.random() < 0.4:
                text = mark(text, key)
            found = detect(text, [deployment, key])
            record_check(
                engine, kind="watermark", subject_kind="campaign", subject_id=plan.cluster_id,
                actor=f"reviewer:{rng.choice(REVIEWERS)}", detected=found.detected, p_value=found.p_value,
                result=found.to_json(),
            )  # fmt: skip
        else:
            model = rng.choice(SUSPECTS)
            answers = [prose[rng.randrange(len(prose))] for _ in range(4)]
            if rng.random() < 0.5:
                answers = [mark(a, deployment) for a in answers]
            found = detect("\n\n".join(answers), [deployment])
            report = ProvenanceReport(
                endpoint=f"https://api.{model}.example/v1", model=model, queries_sent=len(probe_prompts(40)),
                queries_answered=38, errors={"timeout": 2}, words=sum(len(a.split()) for a in answers),
                detection=found, restricted_to_served=False, seconds=rng.uniform(40, 300),
            )  # fmt: skip
            record_check(
                engine, kind="provenance", subject_kind="model", subject_id=model,
                actor=f"reviewer:{rng.choice(REVIEWERS)}", detected=found.detected, p_value=found.p_value,
                result=report.to_json(),
            )  # fmt: skip
    return n


# ------------------------------------------------------------------------------------------------------- state
def _fast_sqlite(dbapi_conn: Any, _record: Any) -> None:
    # A build that stops half-way is thrown away: no fsync per transaction (tens of thousands of case book commits).
    dbapi_conn.execute("PRAGMA synchronous=OFF")


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), STATE_CHUNK):
        yield rows[i : i + STATE_CHUNK]


def write_state(
    data_dir: Path,
    pop: Population,
    finals: dict[int, Score],
    found: dict[int, Campaign],
    moving: dict[int, list[tuple[int, float, Verdict]]],
    history: list[dict[str, Any]],
    reports: list[Report],
    end_us: int,
    rng: random.Random,
    log: Callable[[str], None],
) -> tuple[Week, dict[str, Any]]:
    """``state.db``: accounts and keys, the case book's week, scores and their history, campaigns, intel, checks."""
    engine = store_engine(data_dir)
    event.listen(engine, "connect", _fast_sqlite)
    secret = load_or_create_secret(data_dir)
    StateStore(engine, secret)  # migrated to this code's schema
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    account_rows = [
        {
            "account_id": a.profile.account_id, "org_id": a.profile.org_id, "tier": a.profile.tier,
            "created_at": from_epoch_us(a.profile.created_at_us), "verified": a.profile.verified,
            "payment_fingerprint": a.profile.payment_fingerprint, "email_domain": a.profile.email_domain,
            "country": a.profile.country, "limits_override": None,
        }
        for a in pop.accts
    ]  # fmt: skip
    key_rows = [
        {
            "key_id": key_id, "account_id": a.profile.account_id,
            "key_hash": keyfmt.hash_key(secret, f"{keyfmt.PREFIX}{key_id}_{secrets.token_urlsafe(32)}"),
            "name": "default" if n == 0 else f"key {n + 1}", "created_at": from_epoch_us(a.profile.created_at_us),
            "revoked_at": None,
        }
        for a in pop.accts
        for n, key_id in enumerate(a.profile.keys)
    ]  # fmt: skip
    with engine.begin() as conn:
        for chunk in _chunks(account_rows):
            conn.execute(insert(accounts), chunk)
        for chunk in _chunks(key_rows):
            conn.execute(insert(api_keys), chunk)
    timings["accounts_s"] = time.perf_counter() - t0
    book = CaseBook(engine, secret, RespondConfig(), DetectConfig().thresholds)
    clock = Clock(pop.world.start_us)
    with ExitStack() as stack:
        for target in ("respond.book", "watermark.checks", "intel.store"):
            stack.enter_context(mock.patch(f"distillguard.{target}.utcnow", clock))
        t0 = time.perf_counter()
        week = run_week(book, clock, pop, moving, finals, end_us, rng)
        timings["case_book_s"] = time.perf_counter() - t0
        log(f"  case book: {week.counts}")
        t0 = time.perf_counter()
        intel = ingest_intel(engine, clock, pop, found, reports, data_dir / "partners")
        n_checks = record_checks(engine, clock, pop, secret, end_us, rng)
        timings["intel_and_checks_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    score_rows = [
        {
            "account_id": s.account_id, "risk": round(s.risk, 6), "verdict": s.verdict,
            "reasons": [r.to_json() for r in s.reasons], "calls": s.events, "updated_at": from_epoch_us(s.at_us),
        }
        for s in finals.values()
    ]  # fmt: skip
    campaign_rows = []
    member_rows = []
    for i, campaign in found.items():
        plan = pop.plans[i]
        campaign_rows.append(
            {
                "cluster_id": plan.cluster_id, "found_at": from_epoch_us(plan.found_us), "verdict": plan.verdict,
                "risk": round(plan.risk, 6), "size": len(plan.members), "events": campaign.events,
                "tokens": campaign.tokens, "first_seen": from_epoch_us(campaign.first_us),
                "last_seen": from_epoch_us(campaign.last_us), "body": {**campaign.to_json(), "links": plan.links},
            }
        )  # fmt: skip
        member_rows += [
            {"cluster_id": plan.cluster_id, "account_id": pop.accts[m].profile.account_id, "link_strength": round(s, 3)}
            for m, s in plan.strength.items()
        ]
    with engine.begin() as conn:
        for chunk in _chunks(score_rows):
            conn.execute(insert(scores), chunk)
        for chunk in _chunks(history):
            conn.execute(insert(score_history), chunk)
        for chunk in _chunks(campaign_rows):
            conn.execute(insert(campaigns), chunk)
        for chunk in _chunks(member_rows):
            conn.execute(insert(campaign_members), chunk)
    timings["scores_and_campaigns_s"] = time.perf_counter() - t0
    checked, broken = book.verify()
    if broken is not None:
        raise RuntimeError(f"the audit chain breaks at entry {broken}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        cases: dict[str, int] = dict(conn.exec_driver_sql("SELECT status, count(*) FROM cases GROUP BY status").all())
        n_intel = conn.exec_driver_sql("SELECT count(*) FROM intel_objects").scalar_one()
    engine.dispose()
    return week, {
        "audit_entries": checked,
        "cases": {str(k): int(v) for k, v in cases.items()},
        "scores": len(score_rows),
        "score_history": len(history),
        "campaigns": len(campaign_rows),
        "campaign_members": len(member_rows),
        "links": sum(len(pop.plans[i].links) for i in found),
        "intel_objects": int(n_intel),
        "intel_ingest": intel,
        "checks": n_checks,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
