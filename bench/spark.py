"""Batch analysis on Spark next to the embedded engine: ``distillguard analyze`` over one Parquet archive.

    .venv/bin/python bench/spark.py --events 1000000                       # both engines, 1M events
    .venv/bin/python bench/spark.py --scales 1000000,3000000 --engines spark,embedded
    .venv/bin/python bench/spark.py --events 10000000 --engines spark      # the 10M run: 16 min here

The traffic is bench/clusters.py's generator (``build_world``: 100 events per account over 7 days, benign
populations behind shared NATs and clouds, planted hydra campaigns), written to an archive with the archive code
the ingest worker uses (``distillguard.batch.archive.write_records``: hourly partitions, zstd Parquet), plus its
accounts file. Archives are kept in bench/.run/spark/ and reused by later runs of the same size and seed.

Each engine runs the real command, ``distillguard analyze --engine embedded|spark`` with the shipped risk model,
in a child process: the time is the command's wall time (interpreter, JVM and Spark start included), the stages
are those it reports, and the peak RSS is that of its whole process tree (Spark's JVM and Python workers
included), sampled from /proc every 0.5 s. Spark runs in local mode on every core of this machine
(``local[*]``); its driver heap is ``--driver-memory``. When both engines ran on a size, their verdict and
campaign files are compared byte for byte. Figures are merged into bench/results/spark.json (keyed by events
and engine) and printed as a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from clusters import build_world
from distillguard.batch.archive import write_records
from distillguard.ingest.archive import Archive, Record
from procs import tree_rss_bytes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "spark.json"
WORK = ROOT / "bench" / ".run" / "spark"
EVENTS_PER_ACCOUNT = 100
SAMPLE_S = 0.5


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_archive(events: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The archive (and accounts file) of ``events`` generated events, written once per size and seed."""
    where = WORK / f"world-{events}-{seed}"
    done = where / "world.json"
    if done.is_file():
        return where, json.loads(done.read_text())
    where.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    world = build_world(max(1000, events // EVENTS_PER_ACCOUNT), events, seed)
    with (where / "accounts.jsonl").open("wb") as handle:
        handle.writelines(orjson.dumps(a.to_json()) + b"\n" for a in world.accounts.values())

    def records() -> Iterator[Record]:
        for i, (ts_us, account_id, status, prompt, completion, model, signals, client) in enumerate(world.rows()):
            event = {
                "event_id": f"req_{i:024x}",
                "account_id": account_id,
                "endpoint": "/v1/chat/completions",
                "model": model,
                "request": {"model": model},
                "client": {"ip": client.ip, "user_agent": client.user_agent} if client is not None else {},
                "response": {"status": status, "usage": {"prompt_tokens": prompt, "completion_tokens": completion}},
            }
            yield Record(f"{ts_us // 1000}-{i}", event, ts_us, signals)

    files = write_records(Archive(where / "archive", writer="bench"), records(), batch=250_000)
    size = sum(p.stat().st_size for p in (where / "archive").rglob("*.parquet"))
    figures = {
        "events": world.events,
        "accounts": len(world.account_ids),
        "files": files,
        "archive_mib": round(size / 2**20, 1),
        "generate_and_archive_s": round(time.perf_counter() - started, 1),
    }
    done.write_text(json.dumps(figures, indent=2) + "\n")
    return where, figures


class PeakRss:
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.processes = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            rss, count = tree_rss_bytes(self.pid)
            if rss > self.peak:
                self.peak, self.processes = rss, count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_engine(engine: str, world: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = world / f"verdicts-{engine}.jsonl"
    command = [sys.executable, "-m", "distillguard", "analyze", "--events", str(world / "archive")]
    command += ["--accounts", str(world / "accounts.jsonl"), "--out", str(out), "--engine", engine]
    if engine == "spark":
        command += ["--spark-master", "local[*]", "--spark-conf", f"spark.driver.memory={args.driver_memory}"]
        command += ["--spark-conf", f"spark.sql.shuffle.partitions={args.shuffle_partitions}"]
    log(f"  {engine}: {' '.join(command[2:])}")
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = PeakRss(proc.pid)
    _, stderr = proc.communicate()
    sampler.stop()
    seconds = time.perf_counter() - started
    (world / f"analyze-{engine}.log").write_text(stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed ({proc.returncode}), its output in {world / f'analyze-{engine}.log'}")
    stages: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith("seconds: "):
            for part in line.removeprefix("seconds: ").split(", "):
                name, value = part.rsplit(" ", 1)
                stages[name] = float(value)
    summary = next((line for line in stderr.splitlines() if " events of " in line), "")
    log(f"  {engine}: {seconds:.1f} s, peak RSS {sampler.peak / 2**20:,.0f} MiB; {summary}")
    settings = {"driver_memory": args.driver_memory, "shuffle_partitions": args.shuffle_partitions}
    return {
        "engine": engine,
        **(settings if engine == "spark" else {}),
        "seconds": round(seconds, 1),
        "stages": stages,
        "peak_rss_mib": round(sampler.peak / 2**20),
        "processes_at_peak": sampler.processes,
        "summary": summary,
        "verdicts_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "campaigns_sha256": hashlib.sha256(out.with_suffix(".clusters.jsonl").read_bytes()).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--scales", type=str, default=None, help="comma-separated event counts (overrides --events)")
    parser.add_argument("--engines", type=str, default="spark,embedded")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--driver-memory", default="6g", help="Spark driver heap (local mode: the executor too)")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.scales.split(",")] if args.scales else [args.events]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs: dict[str, dict[str, Any]] = {f"{r['events']}/{r['engine']}": r for r in stored.get("runs", [])}
    for size in sizes:
        log(f"{size:,} events: generating and archiving (reused when present)")
        world, figures = make_archive(size, args.seed)
        log(f"  archive: {figures}")
        for engine in engines:
            result = run_engine(engine, world, args)
            runs[f"{figures['events']}/{engine}"] = {
                **figures,
                **result,
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_average_1m_at_end": round(os.getloadavg()[0], 1),
            }
        embedded, spark = (runs.get(f"{figures['events']}/{e}") for e in ("embedded", "spark"))
        if embedded is not None and spark is not None:
            same = all(embedded[k] == spark[k] for k in ("verdicts_sha256", "campaigns_sha256"))
            embedded["identical_to_other_engine"] = spark["identical_to_other_engine"] = same
            log(f"  verdict and campaign files identical across engines: {same}")
    ordered = sorted(runs.values(), key=lambda r: (r["events"], r["engine"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "analyze --engine spark vs embedded",
                "command": "python bench/spark.py --scales ... --engines spark,embedded",
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                "runs": ordered,
            },
            indent=2,
        )
        + "\n"
    )
    table = Table(title="distillguard analyze over one Parquet archive: Spark (local[*]) vs embedded")
    columns = ("events", "accounts", "engine", "total s", "read s", "accounts s", "campaigns s", "peak RSS MiB", "same")
    for column in columns:
        table.add_column(column, justify="right")
    for r in ordered:
        s = r["stages"]
        identical = r.get("identical_to_other_engine")
        table.add_row(
            f"{r['events']:,}",
            f"{r['accounts']:,}",
            r["engine"],
            f"{r['seconds']:.0f}",
            f"{s.get('read', 0):.0f}",
            f"{s.get('accounts', 0):.0f}",
            f"{s.get('campaigns', 0):.0f}",
            f"{r['peak_rss_mib']:,}",
            "-" if identical is None else ("yes" if identical else "NO"),
        )
    Console(width=160).print(table)
    print(f"saved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
