"""``distillguard analyze``: an event log in, one verdict per account out (the embedded engine; distillguard.batch
has the Spark one, which writes the same files through :func:`write_results`).

1. Read the log in chunks; worker processes parse each line and compute its request signals (the costly part),
   unless the event carries signals of the current version (events exported from the gateway's log do). An archive
   directory (Parquet, from ``distillguard ingest``) is read through ``batch.archive`` instead.
2. Replay the records in time order through the online scorer, exactly as the gateway would have seen them, to
   learn when each account would first have been flagged.
3. Score every account on all it did (the batch pass) and write one JSON object per account.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from distillguard.clusters.campaign import Campaign
from distillguard.clusters.find import find_campaigns
from distillguard.clusters.members import Outcome, settle
from distillguard.detect.model import RiskModel
from distillguard.detect.scorer import AccountInfo, OnlineScorer, Score
from distillguard.detect.signals import extract
from distillguard.events.readers import READERS, Record, Row, Skip
from distillguard.store.accounts_file import read_accounts
from distillguard.timefmt import rfc3339_from_epoch_us

CHUNK_LINES = 4000
# Rescore queued accounts this often during the replay: bounds how late events_until_flagged can be.
FLUSH_EVERY = 256


@dataclass
class AnalyzeReport:
    events: int = 0
    accounts: int = 0
    flagged: int = 0
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    campaigns: int = 0
    clustered: int = 0
    # Wall-clock seconds per stage (read, accounts, campaigns, write), as each engine names them.
    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(self.stages.get(name, 0.0) + time.perf_counter() - started, 3)


def _process_chunk(args: tuple[str, bool, list[bytes]]) -> tuple[list[Row], dict[str, int]]:
    fmt, recompute, lines = args
    reader = READERS[fmt]
    rows: list[Row] = []
    skips: dict[str, int] = {}
    for line in lines:
        if not line.strip():
            continue
        record = reader(line)
        if isinstance(record, Skip):
            skips[record.reason] = skips.get(record.reason, 0) + 1
            continue
        rows.append(_row(record, recompute))
    return rows, skips


def _row(record: Record, recompute: bool) -> Row:
    return (
        record.ts_us,
        record.account_id,
        record.status,
        record.prompt_tokens,
        record.completion_tokens,
        record.model,
        extract(record.request, record.endpoint) if recompute or record.signals is None else record.signals,
        record.client,
    )


def _chunks(path: Path, fmt: str, recompute: bool) -> Iterator[tuple[str, bool, list[bytes]]]:
    with path.open("rb") as handle:
        chunk: list[bytes] = []
        for line in handle:
            chunk.append(line)
            if len(chunk) >= CHUNK_LINES:
                yield fmt, recompute, chunk
                chunk = []
        if chunk:
            yield fmt, recompute, chunk


def read_rows(
    path: Path,
    fmt: str,
    report: AnalyzeReport,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    recompute_signals: bool = False,
) -> list[Row]:
    """Parse and enrich every line of ``path``; rows in file order.

    Signals stored with an event (of the current version) are used as they are unless ``recompute_signals``.
    """
    if fmt not in READERS:
        raise ValueError(f"unknown input format {fmt!r}; expected one of {sorted(READERS)}")
    if not path.is_file():
        raise FileNotFoundError(f"no event log at {path}")
    workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
    rows: list[Row] = []

    def take(result: tuple[list[Row], dict[str, int]], lines: int) -> None:
        chunk_rows, skips = result
        rows.extend(chunk_rows)
        for reason, count in skips.items():
            report.skip_reasons[reason] = report.skip_reasons.get(reason, 0) + count
            report.skipped += count
        if progress is not None:
            progress(lines)

    if workers <= 1:
        for args in _chunks(path, fmt, recompute_signals):
            take(_process_chunk(args), len(args[2]))
        return rows
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[Any] = []
        for args in _chunks(path, fmt, recompute_signals):
            pending.append((pool.submit(_process_chunk, args), len(args[2])))
            if len(pending) >= 2 * workers:
                future, lines = pending.pop(0)
                take(future.result(), lines)
        for future, lines in pending:
            take(future.result(), lines)
    return rows


def load_accounts(path: Path | None) -> dict[str, AccountInfo]:
    if path is None:
        return {}
    return {a.account_id: AccountInfo(a.created_at, a.verified) for a in read_accounts(path)}


def analyze(
    events: Path,
    out: Path | IO[bytes],
    accounts: Path | None = None,
    input_format: str = "native",
    model: RiskModel | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    recompute_signals: bool = False,
    clusters: bool = True,
    clusters_out: Path | IO[bytes] | None = None,
) -> AnalyzeReport:
    """Verdicts of every account of ``events`` (a JSONL log, or an archive directory of Parquet files) to ``out``;
    with ``clusters``, campaigns are found, judged and their members' verdicts raised (and the campaigns written to
    ``clusters_out`` when given)."""
    report = AnalyzeReport()
    metadata = {a.account_id: a for a in read_accounts(accounts)} if accounts is not None else {}
    with report.stage("read"):
        if events.is_dir() and input_format == "native":
            from distillguard.batch.archive import archive_rows  # pyarrow: loaded only for an archive

            rows = archive_rows(events, recompute_signals, progress)
        else:
            rows = read_rows(events, input_format, report, workers, progress, recompute_signals)
        report.out_of_order = sum(1 for a, b in itertools.pairwise(rows) if b[0] < a[0])
        rows.sort(key=lambda r: r[0])  # stable: equal timestamps keep file order
    with report.stage("accounts"):
        info = {a: AccountInfo(m.created_at, m.verified) for a, m in metadata.items()}
        scorer = OnlineScorer(model=model, accounts=info)
        observe, flush = scorer.observe, scorer.flush
        for i, (ts_us, account_id, status, prompt, completion, model_name, signals, _) in enumerate(rows, 1):
            observe(account_id, ts_us, signals, status, prompt, completion, model_name)
            if i % FLUSH_EVERY == 0:
                flush()
        flush()
        report.events = len(rows)
        results = scorer.final_scores()
    campaigns: list[Campaign] = []
    with report.stage("campaigns"):
        if clusters:
            campaigns, _ = find_campaigns(lambda: rows, metadata, OnlineScorer(model=model))
        outcomes = settle(results, campaigns, rows)
    with report.stage("write"):
        write_results(report, results, campaigns, outcomes, out, clusters_out)
    return report


def write_results(
    report: AnalyzeReport,
    results: list[tuple[Score, int | None, int | None]],
    campaigns: list[Campaign],
    outcomes: Mapping[str, Outcome],
    out: Path | IO[bytes],
    clusters_out: Path | IO[bytes] | None,
) -> None:
    """One verdict line per account (``results`` order) to ``out``, the campaigns to ``clusters_out``; the counts
    go to ``report``. Shared by every engine, so their files differ only if their figures do."""
    report.accounts = len(results)
    report.campaigns = len(campaigns)
    report.clustered = sum(len(c.members) for c in campaigns)
    lines = []
    for score, _, _ in results:
        outcome = outcomes[score.account_id]
        report.verdicts[outcome.verdict] = report.verdicts.get(outcome.verdict, 0) + 1
        report.flagged += outcome.first_flagged_us is not None
        obj = score.to_json()
        obj["risk"] = round(outcome.risk, 6)
        obj["verdict"] = outcome.verdict
        obj["reasons"] = [r.to_json() for r in outcome.reasons]
        obj["cluster_id"] = outcome.cluster_id
        first_us = outcome.first_flagged_us
        obj["first_flagged_at"] = rfc3339_from_epoch_us(first_us) if first_us is not None else None
        obj["events_until_flagged"] = outcome.events_until_flagged
        obj["events"] = score.events
        lines.append(orjson.dumps(obj) + b"\n")
    _write(out, lines)
    if clusters_out is not None:
        _write(clusters_out, [orjson.dumps(c.to_json()) + b"\n" for c in campaigns])


def _write(out: Path | IO[bytes], lines: list[bytes]) -> None:
    if isinstance(out, Path):
        tmp = out.with_name(out.name + ".partial")
        tmp.write_bytes(b"".join(lines))
        tmp.replace(out)
    else:
        out.writelines(lines)
