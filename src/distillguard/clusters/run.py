"""Campaign clustering over a deployment's own event log, saved for the console, with campaign cases where due.

One run (:func:`run_once`, the clustering job's work in ``serve``, in a process of its own):

1. the window: the last ``[clusters] lookback_h`` hours of ``events.db``, cut to the newest ``max_events`` events
   (found from the per-minute rollup, so a busy log is never counted);
2. campaigns among the accounts active in it, each judged on its members' union traffic by the deployment's model
   and thresholds (clusters/find.py), and each member's own score over the same window;
3. the campaigns saved (campaign ids carried over from the campaigns they continue: clusters/store.py);
4. a campaign case for each campaign judged at ``respond.review.open_case_at`` or above, unless one is open already.

A campaign explains; it does not convict (the rule ``analyze`` applies, clusters/campaign.py ``inherit``): a case
covers the members whose own traffic reaches ``watch`` (*implicated*); the others stay listed in the campaign, and
the case does not move their standing. A closed case is followed by a new one only when the campaign has since
implicated accounts the closed case did not cover, or is judged more severely than that case proposed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from distillguard.clusters.campaign import Campaign, inherit, suspicious
from distillguard.clusters.find import find_campaigns
from distillguard.clusters.report import event_rows
from distillguard.clusters.store import CampaignRecord, carry_ids, parse_campaign, save_campaigns
from distillguard.config import Level, Settings
from distillguard.detect.model import RiskModel, configured_model
from distillguard.detect.scorer import AccountInfo, OnlineScorer, Score
from distillguard.detect.verdicts import Verdict
from distillguard.events.readers import Row
from distillguard.events.sqlite import EVENTS_DB
from distillguard.respond.book import Case, CaseBook
from distillguard.respond.policy import RANK
from distillguard.store.models import Account
from distillguard.store.state import open_store
from distillguard.timefmt import utcnow

# The audit trail's actor for cases the job opens.
ACTOR = "system:clustering"
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000


@dataclass
class Finding:
    """A campaign found, and the members its case may act on (own traffic at ``watch`` or above)."""

    campaign: Campaign
    implicated: list[str]


@dataclass(frozen=True)
class RunSummary:
    since_us: int
    accounts: int
    campaigns: int
    # Campaigns that kept the id of a stored campaign they continue.
    carried: int
    cases_opened: list[str]
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "since_us": self.since_us,
            "accounts": self.accounts,
            "campaigns": self.campaigns,
            "carried": self.carried,
            "cases_opened": self.cases_opened,
            "seconds": round(self.seconds, 3),
        }


def window_start(events_db: Path, now_us: int, lookback_h: float, max_events: int) -> int:
    """The start of the window: ``lookback_h`` before ``now_us``, later if that would hold over ``max_events``."""
    since = now_us - int(lookback_h * HOUR_US)
    conn = sqlite3.connect(f"file:{events_db}?mode=ro", uri=True)
    try:
        minutes = conn.execute(
            "SELECT minute_us, calls FROM traffic_minutes WHERE minute_us >= ? ORDER BY minute_us DESC",
            (since - since % MINUTE_US,),
        )
        total = 0
        for minute_us, calls in minutes:
            total += calls
            if total > max_events:
                return max(since, int(minute_us) + MINUTE_US)
    except sqlite3.OperationalError:
        pass  # a log without the rollup (an older release wrote it and nothing opened it since): no cut
    finally:
        conn.close()
    return since


def find_in_log(
    settings: Settings, accounts: Mapping[str, Account], since_us: int | None = None
) -> tuple[list[Finding], int]:
    """Campaigns among the accounts of ``settings.data_dir``'s event log (from ``since_us`` on), judged with the
    deployment's model and thresholds, smaller ones than ``[clusters] min_size`` left out; and how many accounts
    were profiled."""
    model = configured_model(settings.detect)
    thresholds: dict[Verdict, float] = dict(settings.detect.thresholds)  # type: ignore[assignment]

    def rows() -> Iterable[Row]:
        return event_rows(settings.data_dir, since_us)

    scorer = OnlineScorer(model, thresholds)
    campaigns, stats = find_campaigns(rows, accounts, scorer)
    campaigns = [c for c in campaigns if len(c.members) >= settings.clusters.min_size]
    if not campaigns:
        return [], stats.accounts
    own = member_scores(rows(), campaigns, accounts, model, thresholds)
    findings = []
    for c in campaigns:
        implicated = []
        for m in c.members:
            score = own.get(m)
            if score is None:
                continue
            c.member_verdicts[m] = inherit(score, c, thresholds)[1]
            if suspicious(score, thresholds):
                implicated.append(m)
        findings.append(Finding(c, implicated))
    return findings, stats.accounts


def member_scores(
    rows: Iterable[Row],
    campaigns: Sequence[Campaign],
    accounts: Mapping[str, Account],
    model: RiskModel | None,
    thresholds: Mapping[Verdict, float],
) -> dict[str, Score]:
    """Each member's own score on all it did in the window (only members' events are read into the scorer; the
    scores are computed once, at the end: when they would have been flagged is not asked here)."""
    members = {m for c in campaigns for m in c.members}
    info = {m: AccountInfo(a.created_at, a.verified) for m in members if (a := accounts.get(m)) is not None}
    scorer = OnlineScorer(model, thresholds, accounts=info)
    for ts_us, account_id, status, prompt_tokens, completion_tokens, model_name, signals, _ in rows:
        if account_id in members:
            scorer.observe(account_id, ts_us, signals, status, prompt_tokens, completion_tokens, model_name)
    return {score.account_id: score for score, _, _ in scorer.final_scores()}


def save_findings(engine: Engine, findings: Sequence[Finding], found_at: datetime) -> tuple[list[CampaignRecord], int]:
    """Carry campaign ids over from the campaigns they continue, then save; the records saved (in the order of
    ``findings``) and how many ids were carried."""
    carried = carry_ids(engine, [f.campaign for f in findings])
    records = [parse_campaign(f.campaign.to_json(), n) for n, f in enumerate(findings, 1)]
    save_campaigns(engine, records, found_at)
    return records, carried


def case_due(record: CampaignRecord, implicated: Sequence[str], latest: Case | None, open_at: Level) -> bool:
    """Whether a campaign gets a case now, given the newest case about it (see the module's docstring)."""
    if not implicated or RANK[record.verdict] < RANK[open_at]:
        return False
    if latest is None:
        return True
    if latest.open:
        return False
    return not set(implicated) <= set(latest.members) or RANK[record.verdict] > RANK[latest.proposed]


def open_due_cases(book: CaseBook, found: Iterable[tuple[CampaignRecord, list[str]]], open_at: Level) -> list[str]:
    """Open the campaign cases that are due; their ids."""
    opened = []
    for record, implicated in found:
        if case_due(record, implicated, book.latest_case("campaign", record.cluster_id), open_at):
            case = book.open_campaign_case(
                record.cluster_id, implicated, record.verdict, record.risk, record.kinds, actor=ACTOR
            )
            opened.append(case.case_id)
    return opened


def run_once(settings: Settings, now_us: int) -> RunSummary:
    """One run of the clustering job over ``settings``' data directory, as of ``now_us``."""
    started = time.monotonic()
    events_db = settings.data_dir / EVENTS_DB
    if not events_db.exists():
        return RunSummary(now_us, 0, 0, 0, [], time.monotonic() - started)
    since = window_start(events_db, now_us, settings.clusters.lookback_h, settings.clusters.max_events)
    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    try:
        accounts = {a.account_id: a for a in store.iter_accounts()}
        findings, profiled = find_in_log(settings, accounts, since)
        records, carried = save_findings(store.engine, findings, utcnow())
        opened: list[str] = []
        if settings.respond.enabled:
            book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
            implicated = (f.implicated for f in findings)
            opened = open_due_cases(book, zip(records, implicated, strict=True), settings.respond.review.open_case_at)
    finally:
        store.close()
    return RunSummary(since, profiled, len(records), carried, opened, time.monotonic() - started)
