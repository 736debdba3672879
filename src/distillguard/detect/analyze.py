"""``distillguard analyze``: an event log in, one verdict per account out.

1. Read the log in chunks; worker processes parse each line and compute its request signals (the costly part),
   unless the event carries signals of the current version (events exported from the gateway's log do).
2. Replay the records in time order through the online scorer, exactly as the gateway would have seen them, to
   learn when each account would first have been flagged.
3. Score every account on all it did (the batch pass) and write one JSON object per account.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from distillguard.detect.model import RiskModel
from distillguard.detect.scorer import AccountInfo, OnlineScorer
from distillguard.detect.signals import RequestSignals, extract
from distillguard.events.readers import READERS, Record, Skip
from distillguard.store.accounts_file import read_accounts
from distillguard.timefmt import rfc3339_from_epoch_us

CHUNK_LINES = 4000
# Rescore queued accounts this often during the replay: bounds how late events_until_flagged can be.
FLUSH_EVERY = 256

# (ts_us, account_id, status, prompt_tokens, completion_tokens, model, signals)
Row = tuple[int, str, int, int | None, int | None, str | None, RequestSignals]


@dataclass
class AnalyzeReport:
    events: int = 0
    accounts: int = 0
    flagged: int = 0
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)


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
) -> AnalyzeReport:
    report = AnalyzeReport()
    rows = read_rows(events, input_format, report, workers, progress, recompute_signals)
    report.out_of_order = sum(1 for a, b in itertools.pairwise(rows) if b[0] < a[0])
    rows.sort(key=lambda r: r[0])  # stable: equal timestamps keep file order
    scorer = OnlineScorer(model=model, accounts=load_accounts(accounts))
    observe, flush = scorer.observe, scorer.flush
    for i, (ts_us, account_id, status, prompt_tokens, completion_tokens, model_name, signals) in enumerate(rows, 1):
        observe(account_id, ts_us, signals, status, prompt_tokens, completion_tokens, model_name)
        if i % FLUSH_EVERY == 0:
            flush()
    flush()
    report.events = len(rows)
    results = scorer.final_scores()
    report.accounts = len(results)
    lines = []
    for score, first_us, until in results:
        report.verdicts[score.verdict] = report.verdicts.get(score.verdict, 0) + 1
        report.flagged += first_us is not None
        obj = score.to_json()
        obj["cluster_id"] = None
        obj["first_flagged_at"] = rfc3339_from_epoch_us(first_us) if first_us is not None else None
        obj["events_until_flagged"] = until
        obj["events"] = score.events
        lines.append(orjson.dumps(obj) + b"\n")
    if isinstance(out, Path):
        tmp = out.with_name(out.name + ".partial")
        tmp.write_bytes(b"".join(lines))
        tmp.replace(out)
    else:
        out.writelines(lines)
    return report
