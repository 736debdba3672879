"""Benchmark of one ingest worker: events/s from a preloaded Redis Stream to a committed Parquet archive.

    python bench/ingest.py                       # 200,000 simulated events (distillguard simulate), 3 rounds
    python bench/ingest.py --events 50000 --rounds 1   # quicker

Two cases over the same events: with signals already in the events (what a gateway with detection on appends:
ingest only checks their version) and without (ingest computes them with ``detect.signals.extract``, the costly
part). Each run preloads the stream of a fresh redis-server, then one worker (a child process, so that its peak
RSS is its own) reads, decodes, enriches, writes hourly Parquet files and acknowledges until the stream is drained;
only that loop is timed (not imports or the preload). Rounds alternate the two cases, so a busy neighbour slows
both alike.

Per run: events/s by the wall clock (what a deployment sees; includes waiting for Redis and for the disk, and for
the CPU when other processes want it) and events per CPU-second of the worker (its user + system time: the cost
of one event, much less sensitive to a shared machine), with the 1-minute load average when the run started.
Target: >= 20,000 events/s per worker. Figures go to bench/results/ingest.json.

    python bench/ingest.py --rollups sqlite      # the worker also keeps the store's traffic rollups (ingest/rollups.py)
    python bench/ingest.py --rollups postgresql+psycopg://user@host:5432/db   # in that database (its rollups emptied)

With ``--rollups`` the two cases are the events with signals, without and with the rollups, side by side in
alternating rounds (the rollups' cost does not depend on where the signals came from); figures go to
bench/results/ingest_rollups_sqlite.json (or _postgresql.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from procs import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest.json"
ROLLUP_RESULTS = ROOT / "bench" / "results" / "ingest_rollups_STORE.json"
STREAM = "distillguard:events"
TARGET = 20_000


def simulated_events(n: int, workdir: Path) -> list[dict[str, Any]]:
    """``n`` events of the simulator (benign and attack populations), without signals."""
    from distillguard.simulate import SimulationConfig, simulate

    accounts = max(100, n // 80)  # about 90 events per account and day at the default rates
    simulate(SimulationConfig(accounts=accounts, days=1.0, seed=7), workdir)
    events: list[dict[str, Any]] = []
    with (workdir / "events.jsonl").open("rb") as handle:
        for line in handle:
            events.append(orjson.loads(line))
            if len(events) == n:
                break
    if len(events) < n:
        raise SystemExit(f"the simulator made only {len(events)} events; raise the account count")
    return events


def with_signals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from distillguard.detect.signals import extract
    from distillguard.events.signals import to_object

    return [{**e, "signals": to_object(extract(e["request"], e["endpoint"]))} for e in events]


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (make services)")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def preload(url: str, events: list[dict[str, Any]]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for start in range(0, len(events), 2000):
        pipe = client.pipeline(transaction=False)
        for event in events[start : start + 2000]:
            pipe.xadd(STREAM, {"event_id": event["event_id"], "event": orjson.dumps(event)})
        pipe.execute()
    client.close()


def rollup_store(store_url: str | None, out: Path) -> Any:
    """The rollups the measured worker keeps (their tables emptied first), or None."""
    if store_url is None:
        return None
    from sqlalchemy import delete

    from distillguard.ingest.rollups import StoreRollups
    from distillguard.store.migrate import upgrade
    from distillguard.store.schema import account_traffic, rollup_files, traffic_minutes
    from distillguard.store.state import store_engine

    engine = store_engine(out.parent, store_url)
    upgrade(engine)
    with engine.begin() as conn:
        for table in (rollup_files, traffic_minutes, account_traffic):
            conn.execute(delete(table))
    return StoreRollups(engine, out)


def child(url: str, out: Path, batch: int, store_url: str | None) -> None:
    """The measured worker: prints its figures as JSON."""
    from distillguard.ingest.worker import IngestOptions, IngestWorker

    rollups = rollup_store(store_url, out)
    worker = IngestWorker(IngestOptions(stream_url=url, out=out, consumer="bench", batch=batch), rollups=rollups)
    worker.ensure_group()
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = worker.run(until_idle=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    worker.close()
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    figures = {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib(), "archive_bytes": size}
    print(json.dumps({**figures, **stats.to_json()}))


def peak_rss_mib() -> float:
    """This process's peak RSS since its exec (VmHWM; getrusage's maxrss would count the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(
    label: str, events: list[dict[str, Any]], batch: int, workdir: Path, rollups: str | None = None
) -> dict[str, Any]:
    port = free_port()
    redis_dir = workdir / f"redis-{port}"
    redis_dir.mkdir()
    server = start_redis(port, redis_dir)
    url = f"redis://127.0.0.1:{port}/0"
    out = workdir / f"archive-{port}"
    store = ["--store-url", f"sqlite:///{workdir / f'state-{port}.db'}" if rollups == "sqlite" else str(rollups)]
    try:
        preload(url, events)
        load_1m = os.getloadavg()[0]
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                url,
                "--out",
                str(out),
                "--batch",
                str(batch),
                *(store if rollups else []),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(redis_dir, ignore_errors=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["archived"] != len(events):
        raise SystemExit(f"{label}: archived {figures['archived']} of {len(events)} events")
    figures["events_per_s"] = round(len(events) / figures["seconds"])
    figures["events_per_cpu_s"] = round(len(events) / figures["cpu_seconds"])
    figures["load_1m"] = round(load_1m, 2)
    figures["run"] = label
    return figures


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per case: the median, lowest and highest events/s, by the wall clock and per CPU-second."""
    cases: dict[str, dict[str, int]] = {}
    for label in dict.fromkeys(row["run"] for row in rows):
        wall = [row["events_per_s"] for row in rows if row["run"] == label]
        cpu = [row["events_per_cpu_s"] for row in rows if row["run"] == label]
        cases[label] = {
            "events_per_s_median": round(statistics.median(wall)),
            "events_per_s_min": min(wall),
            "events_per_s_max": max(wall),
            "events_per_cpu_s_median": round(statistics.median(cpu)),
        }
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case, alternating (default 3)")
    parser.add_argument("--rollups", help="also measure the worker keeping the rollups: 'sqlite' or a store URL")
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out, args.batch, args.store_url)
        return
    with tempfile.TemporaryDirectory(prefix="dg-bench-ingest-") as tmp:
        workdir = Path(tmp)
        print(f"simulating {args.events} events …", file=sys.stderr)
        plain = simulated_events(args.events, workdir / "sim")
        print("computing their signals (for the run where the gateway did) …", file=sys.stderr)
        enriched = with_signals(plain)
        rows = []
        for round_ in range(args.rounds):
            print(f"round {round_ + 1} of {args.rounds} …", file=sys.stderr)
            rows.append(run("signals present", enriched, args.batch, workdir))
            if args.rollups:
                label = f"signals present, rollups ({args.rollups.split(':')[0]})"
                rows.append(run(label, enriched, args.batch, workdir, args.rollups))
            else:
                rows.append(run("signals computed at ingest", plain, args.batch, workdir))
    mean_bytes = sum(len(orjson.dumps(e)) for e in plain) / len(plain)
    mean_with_signals = sum(len(orjson.dumps(e)) for e in enriched) / len(enriched)
    print(
        f"\n{args.events} events (mean {mean_bytes:.0f} bytes of JSON, {mean_with_signals:.0f} with signals), "
        f"batch {args.batch}, one worker"
    )
    print(
        f"{'run':<28} {'events/s':>9} {'per CPU-s':>10} {'seconds':>8} {'load 1m':>8} {'peak RSS MiB':>13} "
        f"{'files':>6} {'archive MiB':>12}"
    )
    for row in rows:
        print(
            f"{row['run']:<28} {row['events_per_s']:>9,} {row['events_per_cpu_s']:>10,} {row['seconds']:>8.2f} "
            f"{row['load_1m']:>8.2f} {row['peak_rss_mib']:>13.0f} {row['files']:>6} "
            f"{row['archive_bytes'] / 2**20:>12.1f}"
        )
    cases = summary(rows)
    for label, figures in cases.items():
        print(
            f"{label}: median {figures['events_per_s_median']:,} events/s "
            f"({figures['events_per_s_min']:,}-{figures['events_per_s_max']:,}), "
            f"{figures['events_per_cpu_s_median']:,} per CPU-second"
        )
    print(f"target: >= {TARGET:,} events/s per worker")
    results = RESULTS
    if args.rollups:
        store = "sqlite" if args.rollups == "sqlite" else args.rollups.split(":")[0].split("+")[0]
        results = ROLLUP_RESULTS.with_name(f"ingest_rollups_{store}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                "benchmark": "ingest",
                "events": args.events,
                "batch": args.batch,
                "rollups": args.rollups.split("@")[-1] if args.rollups else None,
                "mean_event_bytes": round(mean_bytes),
                "mean_event_bytes_with_signals": round(mean_with_signals),
                "target_events_per_s": TARGET,
                "summary": cases,
                "runs": rows,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
