"""``distillguard analyze --engine spark``: the embedded analysis with its aggregation done by Spark.

What runs where, and why the verdicts are the embedded engine's:

1. Spark reads the archive (``batch.events``) and aggregates it per account: the feature totals
   (``batch.features``), and the profiles campaign linking needs (``batch.profiles``). Millions of events become
   one row per account.
2. The driver scores those rows with the same rules, risk model and gate as every other score
   (``OnlineScorer.score_vectors``); links the profiles into campaigns with the same code (``clusters.find``); and
   lets ``clusters.campaign.judge`` judge them through :class:`EngineScorer`, whose totals Spark aggregates per
   campaign over the members' events.
3. For the accounts and campaigns whose final verdict is flagged, Spark replays their own events on the executors
   to learn when they would first have been flagged online (``batch.replay``).
4. Members raised by their campaign are settled as the embedded engine settles them (``clusters.members``), and
   the files are written by the same function (``detect.analyze.write_results``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from distillguard.batch.archive import check_archive
from distillguard.batch.events import read_events, with_order_index
from distillguard.batch.features import feature_totals, model_clock
from distillguard.batch.profiles import KEY, account_profiles
from distillguard.batch.replay import first_flags
from distillguard.batch.session import DEFAULT_MASTER, parse_conf, running_session, spark_session
from distillguard.clusters import campaign as campaign_module
from distillguard.clusters.campaign import Campaign, judge
from distillguard.clusters.find import link_campaigns, rank_campaigns
from distillguard.clusters.members import count_flagged, raise_members
from distillguard.detect import analyze as analyze_module
from distillguard.detect.analyze import AnalyzeReport, write_results
from distillguard.detect.scorer import AccountInfo, OnlineScorer, Score
from distillguard.detect.verdicts import FLAGGED
from distillguard.store.accounts_file import read_accounts

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from distillguard.detect.model import RiskModel

CAMPAIGN = "cluster_id"


class EngineScorer(OnlineScorer):
    """A scorer whose accounts' events Spark aggregates: ``final_scores`` runs the jobs over ``events`` keyed by
    ``key`` (accounts, or campaigns) with the metadata set on it, instead of reading state built by ``observe``.

    It stands in for the replaying scorer where code takes one (``clusters.campaign.judge``), so that code decides
    what it always decides (a campaign's sign-up time and verification, what it does with the scores)."""

    def __init__(
        self,
        events: DataFrame,
        key: str,
        index: str,
        flush_every: int,
        model: RiskModel | None = None,
        accounts: Mapping[str, AccountInfo] | None = None,
    ) -> None:
        super().__init__(model=model, accounts=accounts)
        self.events, self.key, self.index, self.flush_every = events, key, index, flush_every

    def final_scores(self) -> list[tuple[Score, int | None, int | None]]:
        clock = model_clock(self.events)
        totals = feature_totals(self.events, self.key, clock)
        keys = sorted(totals)
        for key in keys:
            info = self.info(key)
            if info is not None:
                totals[key].created_us, totals[key].verified = info.created_us, info.verified
        at = [(totals[k].last_us, totals[k].events) for k in keys]
        scores = self.score_vectors(keys, [totals[k].vector() for k in keys], at)
        flagged = [s.account_id for s in scores if s.verdict in FLAGGED]
        infos = {k: i for k in flagged if (i := self.info(k)) is not None}
        flags = first_flags(self.events, self.key, self.index, flagged, self, clock, infos, self.flush_every)
        out: list[tuple[Score, int | None, int | None]] = []
        for score, (last_us, events) in zip(scores, at, strict=True):
            if score.verdict not in FLAGGED:
                out.append((score, None, None))
                continue
            first, until = flags.get(score.account_id, (last_us, events))  # else flagged only by the final pass
            out.append((score, first, until))
        return out


def analyze_spark(
    archive: str,
    out: Path | IO[bytes],
    accounts: Path | None = None,
    model: RiskModel | None = None,
    recompute_signals: bool = False,
    clusters: bool = True,
    clusters_out: Path | IO[bytes] | None = None,
    spark: SparkSession | None = None,
    master: str = DEFAULT_MASTER,
    conf: Mapping[str, str] | None = None,
) -> AnalyzeReport:
    """``detect.analyze.analyze`` on Spark, over the Parquet archive at ``archive`` (a path or a URL Spark reads).

    Uses ``spark``, or this process's running session, when there is one (and leaves it running); otherwise starts
    a session on ``master`` with ``conf`` and stops it at the end."""
    started = spark is None and not running_session()
    session = spark if spark is not None else spark_session(master, conf)
    from pyspark import StorageLevel

    report = AnalyzeReport()
    cached: list[DataFrame] = []
    try:
        metadata = {a.account_id: a for a in read_accounts(accounts)} if accounts is not None else {}
        with report.stage("read"):
            events = read_events(session, archive, recompute_signals).persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(events)
            report.events = events.count()
        with report.stage("accounts"):
            infos = {a: AccountInfo(m.created_at, m.verified) for a, m in metadata.items()}
            scorer = EngineScorer(events, KEY, "seq", analyze_module.FLUSH_EVERY, model, infos)
            results = scorer.final_scores()
        campaigns: list[Campaign] = []
        with report.stage("campaigns"):
            if clusters:
                with report.stage("campaigns: profiles"):
                    profiles = account_profiles(events, metadata)
                with report.stage("campaigns: linking"):
                    campaigns, _ = link_campaigns(profiles)
                with report.stage("campaigns: judging"):
                    if campaigns:
                        union = campaign_events(events, campaigns).persist(StorageLevel.MEMORY_AND_DISK)
                        cached.append(union)
                        judged = EngineScorer(union, CAMPAIGN, "campaign_seq", campaign_module.FLUSH_EVERY, model)
                        judge(campaigns, (), profiles, judged)
                    rank_campaigns(campaigns)
            outcomes, flagged_at = raise_members(results, campaigns)
            if flagged_at:
                count_flagged(outcomes, flagged_at, events_until(events, flagged_at))
        with report.stage("write"):
            write_results(report, results, campaigns, outcomes, out, clusters_out)
    finally:
        for frame in cached:
            frame.unpersist()
        if started:
            session.stop()
    return report


def run_cli(
    events: str,
    out: Path,
    accounts: Path | None,
    model: RiskModel | None,
    recompute_signals: bool,
    input_format: str,
    master: str,
    conf: list[str],
    clusters: bool = True,
    clusters_out: Path | None = None,
) -> AnalyzeReport:
    """``distillguard analyze --engine spark``: what a user can get wrong is checked before Spark starts."""
    if input_format != "native":
        raise ValueError(
            f"--engine spark reads the archive of native events; --input-format {input_format} is for logs"
        )
    if "://" not in events:  # a local archive (a URL is for Spark to resolve)
        check_archive(Path(events))
    settings = parse_conf(conf)
    return analyze_spark(
        events, out, accounts, model, recompute_signals, clusters, clusters_out, master=master, conf=settings
    )


def campaign_events(events: DataFrame, campaigns: list[Campaign]) -> DataFrame:
    """The campaign members' events with their campaign's id, numbered in order among themselves (``judge``
    replays exactly these, and rescores every ``FLUSH_EVERY`` of them)."""
    from pyspark.sql import functions as F

    members = [(m, c.cluster_id) for c in campaigns for m in c.members]
    frame = events.sparkSession.createDataFrame(members, f"{KEY} string, {CAMPAIGN} string")
    union = events.join(F.broadcast(frame), KEY).drop(KEY)
    return with_order_index(union, ("seq",), "campaign_seq")


def events_until(events: DataFrame, flagged_at: Mapping[str, int]) -> dict[str, tuple[int | None, int]]:
    """``clusters.members.events_until`` as a Spark job: per account, its first event's time and its events at or
    before its time in ``flagged_at``."""
    from pyspark.sql import functions as F

    at = events.sparkSession.createDataFrame(list(flagged_at.items()), f"{KEY} string, at bigint")
    rows = (
        events.join(F.broadcast(at), KEY)
        .groupBy(KEY)
        .agg(F.min("ts").alias("first"), F.sum(F.when(F.col("ts") <= F.col("at"), 1).otherwise(0)).alias("n"))
        .collect()
    )
    found = {row[KEY]: (row["first"], row["n"]) for row in rows}
    return {account_id: found.get(account_id, (None, 0)) for account_id in flagged_at}
