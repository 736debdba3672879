"""Benchmark of what a console page reads from the Parquet archive in a shared deployment (``[events] sink = "redis"``).

    python bench/console_archive.py                    # 300,000 calls over a day, both layouts
    python bench/console_archive.py --events 100000    # quicker

Builds a day of calls (default 300,000 from 3,000 accounts: five extraction accounts of 10,000 calls each, the
others on a Zipf curve, each account's calls spread over the day; prompts and answers of about 1 KB, signals
computed) as an ingest worker archives them, in two layouts:

- ``batched``: files of up to 5,000 calls per hour (a worker under load, ``--batch 5000``);
- ``realtime``: a file every 2 s of traffic per hour (a worker keeping up with this rate, ``--flush-s 2``): about
  seven calls per file, 43,000 files.

Files are written as ``Archive.stage`` writes them (row groups of ``ROW_GROUP_ROWS``). The rollups go into a SQLite
state store (``StoreRollups``, as the workers keep them). Then, with the console's
bound (``PAGE_BOUND``), it times the account page's archive read (``account_calls``: the newest 20 calls with their
text and the signals of the newest 500) for accounts from the heaviest to one with a single call at the start of the
day, and a call by its id (``event``): median of five warm reads (first read in brackets), with the files opened
and rows compared, and whether the read found all it wanted before its bound. Figures go to
bench/results/console_archive.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "console_archive.json"
DAY_START_US = 1_795_046_400_000_000  # 2026-11-18T00:00:00Z
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
HEAVY = 5
HEAVY_CALLS = 10_000
WORDS = ("the", "of", "model", "answer", "reason", "step", "data", "train", "prompt", "token", "system", "user")


def calls_of(events: int, accounts: int, rng: random.Random) -> list[tuple[int, str]]:
    """(time, account) of every call, in time order."""
    counts = {f"extract-{i}": HEAVY_CALLS for i in range(HEAVY)}
    rest = events - HEAVY * HEAVY_CALLS
    weights = [1 / (rank**1.1) for rank in range(1, accounts - HEAVY)]
    scale = rest / sum(weights)
    for rank, weight in enumerate(weights, 1):
        counts[f"acct-{rank:05d}"] = max(1, round(weight * scale))
    counts["early-bird"] = 1  # one call, at the start of the day
    calls = [
        (DAY_START_US + rng.randrange(DAY_US), a) for a, n in counts.items() if a != "early-bird" for _ in range(n)
    ]
    calls.append((DAY_START_US + 1_000_000, "early-bird"))
    calls.sort()
    return calls


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def event(i: int, ts_us: int, account: str, rng: random.Random) -> dict[str, Any]:
    prompt = ("Think step by step. " if account.startswith("extract") else "") + text(rng, 180)
    return {
        "event_id": f"req_{ts_us:013x}{i:011x}",
        "ts": "",
        "account_id": account,
        "key_id": f"key-{account}",
        "client": {"ip": "203.0.113.7", "user_agent": "python-httpx/0.28"},
        "endpoint": "/v1/chat/completions",
        "model": "m",
        "request": {"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": 512},
        "response": {"status": 200, "usage": {"prompt_tokens": 240, "completion_tokens": 200}, "text": text(rng, 160)},
    }


def build(workdir: Path, layout: str, calls: list[tuple[int, str]]) -> tuple[Path, Any]:
    """The archive of ``calls`` in ``layout`` and a store with its rollups; returns (archive, engine)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillguard.detect.signals import extract
    from distillguard.ingest.archive import ROW_GROUP_ROWS, Record, build_table, file_name, partition_dir, partition_of
    from distillguard.ingest.rollups import StoreRollups
    from distillguard.store.migrate import upgrade
    from distillguard.store.state import store_engine

    archive = workdir / layout
    engine = store_engine(workdir, f"sqlite:///{workdir / f'{layout}.db'}")
    if archive.is_dir():  # kept from an earlier run (--keep)
        return archive, engine
    upgrade(engine)
    rollups = StoreRollups(engine, archive)
    rng = random.Random(11)
    per_file = 5000 if layout == "batched" else max(1, round(len(calls) / (DAY_US / 2_000_000)))
    by_hour: dict[int, list[tuple[int, int, str]]] = {}
    for i, (ts_us, account) in enumerate(calls):
        by_hour.setdefault(ts_us // HOUR_US, []).append((i, ts_us, account))
    files = 0
    for hour, group in sorted(by_hour.items()):  # an hour at a time: a day of events would not fit in memory
        records = []
        for i, ts_us, account in group:
            e = event(i, ts_us, account, rng)
            stream_id = f"{ts_us // 1000 + 50}-{i}"
            records.append(Record(stream_id, e, ts_us, extract(e["request"], e["endpoint"])))
        directory = partition_dir(archive, partition_of(hour * HOUR_US))
        directory.mkdir(parents=True, exist_ok=True)
        tables = []
        for start in range(0, len(records), per_file):
            part = records[start : start + per_file]
            tables.append(build_table(part))
            path = directory / file_name(part[0].stream_id, part[-1].stream_id)
            pq.write_table(tables[-1], path, compression="zstd", row_group_size=ROW_GROUP_ROWS)  # as Archive.stage
            files += 1
        # The rollups of the hour in one go (the same counts as file by file, without a commit per tiny file).
        rollups.apply(directory / file_name(records[0].stream_id, records[-1].stream_id), pa.concat_tables(tables))
    print(f"{layout}: {len(calls):,} calls in {files:,} files", file=sys.stderr)
    return archive, engine


def timed(read: Any, rounds: int = 5) -> dict[str, Any]:
    started = time.perf_counter()
    first = read()
    first_ms = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return {"first_ms": round(first_ms, 1), "median_ms": round(statistics.median(times), 1), "result": first}


def measure(archive: Path, engine: Any, calls: list[tuple[int, str]]) -> list[dict[str, Any]]:
    from distillguard.events import archive_calls
    from distillguard.events.shared_view import PAGE_BOUND, SharedEventLog

    counts: dict[str, int] = {}
    for _, account in calls:
        counts[account] = counts.get(account, 0) + 1
    ranked = sorted(counts, key=lambda a: -counts[a])
    light = [a for a in ranked if counts[a] == 3] or ranked[-2:]
    picks = {
        "heaviest (extraction)": ranked[0],
        "p99 account": ranked[len(ranked) // 100],
        "p90 account": ranked[len(ranked) // 10],
        "median account": ranked[len(ranked) // 2],
        "3 calls over the day": light[0],
        "1 call, 24 h ago": "early-bird",
    }
    view = SharedEventLog(engine, archive, PAGE_BOUND)
    opened: list[tuple[int, int]] = []
    real_find = archive_calls.ArchiveCalls.find

    def counting_find(self: Any, *args: Any) -> Any:
        found = real_find(self, *args)
        opened.append((found.opened, found.compared))
        return found

    archive_calls.ArchiveCalls.find = counting_find  # type: ignore[method-assign,assignment]
    rows = []
    for label, account in picks.items():
        opened.clear()
        figures = timed(lambda a=account: view.account_calls(a, 20, 500))
        latest, signals = figures.pop("result")
        rows.append(
            {
                "read": f"account page: {label}",
                "account_calls": counts[account],
                "found": [len(latest.rows), len(signals.rows)],
                "complete": latest.complete and signals.complete,
                "files_opened": opened[0][0],
                "rows_compared": opened[0][1],
                **figures,
            }
        )
    ts_us, account = calls[len(calls) // 2]
    event_id = f"req_{ts_us:013x}{len(calls) // 2:011x}"
    figures = timed(lambda: view.event(event_id))
    assert figures.pop("result")["account_id"] == account
    rows.append({"read": "a call by its id", **figures})
    archive_calls.ArchiveCalls.find = real_find  # type: ignore[method-assign]
    return rows + pages(archive, engine, picks)


def pages(archive: Path, engine: Any, picks: dict[str, str]) -> list[dict[str, Any]]:
    """The whole account page (``GET /console/accounts/{id}`` of a standalone console: store, archive, rendering),
    each account scored so that its page reads the evidence of its latest calls."""
    import re

    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from distillguard.config import load_settings
    from distillguard.console.app import console_routes
    from distillguard.console.context import ConsoleContext
    from distillguard.store.scores import ScoreRecord, ScoreStore
    from distillguard.timefmt import utcnow

    settings = load_settings(
        None,
        data_dir=archive.parent / f"console-{archive.name}",
        store_url=str(engine.url),
        events={"sink": "redis", "stream_url": "redis://127.0.0.1:1/0", "archive_dir": str(archive)},
    )
    ctx = ConsoleContext.standalone(settings)
    reasons = [{"signal": "cot_elicitation", "value": 1.0, "detail": "step-by-step reasoning", "weight": 4.5}]
    ScoreStore(ctx.engine).write([ScoreRecord(a, 0.9, "block", reasons, 100, utcnow()) for a in picks.values()])
    _, token = ctx.book.create_admin_token("bench", "operator:bench")
    client = TestClient(Starlette(routes=console_routes(ctx)), follow_redirects=False)
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert found is not None
    login = {"token": token, "csrf": found.group(1), "next": "/console/"}
    assert client.post("/console/login", data=login).status_code == 303
    client.get("/console/accounts/warm-up")  # the process's first page (templates compiled), not an account's cost
    rows = []
    for label, account in picks.items():
        figures = timed(lambda a=account: client.get(f"/console/accounts/{a}").status_code)
        assert figures.pop("result") == 200
        rows.append({"read": f"whole page: {label}", **figures})
    ctx.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--layouts", default="batched,realtime")
    parser.add_argument("--keep", type=Path, help="build the archives here and keep them (reused when there)")
    args = parser.parse_args()
    calls = calls_of(args.events, args.accounts, random.Random(7))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dg-bench-archive-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for layout in args.layouts.split(","):
            archive, engine = build(workdir, layout, calls)
            results[layout] = measure(archive, engine, calls)
            engine.dispose()
    from distillguard.events.shared_view import PAGE_BOUND

    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "console_archive",
                "events": args.events,
                "accounts": args.accounts,
                "page_bound": {"files": PAGE_BOUND.files, "rows": PAGE_BOUND.rows},
                "load_1m": round(os.getloadavg()[0], 2),
                "layouts": results,
                "machine": machine,
            },
            indent=2,
        )
        + "\n"
    )
    for layout, rows in results.items():
        print(f"\n{layout}")
        print(f"{'read':<40} {'calls':>7} {'found':>10} {'files':>6} {'rows':>9} {'complete':>8} {'ms':>14}")
        for r in rows:
            found = "/".join(str(n) for n in r.get("found", []))
            print(
                f"{r['read']:<40} {r.get('account_calls', ''):>7} {found:>10} {r.get('files_opened', ''):>6} "
                f"{r.get('rows_compared', ''):>9} {r.get('complete', '')!s:>8} "
                f"{r['median_ms']:>7.1f} ({r['first_ms']:.0f})"
            )
    print(f"saved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
