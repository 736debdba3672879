"""Replicas benchmark: one gateway process against two (`serve --workers 2`) with limits on Redis, and what Redis
adds to a call's latency compared with in-memory limits.

    .venv/bin/python bench/replicas.py [--quick] [--out bench/results/replicas.json]

The machine has two cores, and the load generator (wrk), the mock upstream and Redis need CPU too, so three layouts
are measured, each closed loop at 64 connections (bench/closed_loop.py):

- ``1 process, pinned``: the gateway alone on core 0, wrk + mock + Redis on core 1 (bench/gateway.py's layout);
- ``1 process, 2 cores``: the gateway unpinned, sharing both cores with wrk + mock + Redis (still on core 1);
- ``2 processes, 2 cores``: ``--workers 2`` unpinned, the same neighbours.

The gateways' own CPU time is read from /proc before and after each run, so calls per gateway CPU-second show whether
a second process does as much work per CPU-second as the first (what scaling on more cores would look like), apart
from how much CPU it could get here. Then, on the pinned layout, an open-loop run at a fixed rate (bench/loadgen.py)
with memory limits and one with Redis limits, back to back: the difference of their percentiles is what Redis adds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from closed_loop import run_wrk, write_script
from gateway import (
    BENCH_ACCOUNT,
    DISTILLGUARD,
    HIGH_REQUESTS_LIMIT,
    HIGH_TOKENS_LIMIT,
    PYTHON,
    REQUEST,
    Target,
    _cli,
    clean_env,
    git_revision,
    machine_info,
    preflight,
    sanity_call,
    start_mock,
)
from procs import (
    LOAD_CORE,
    LOOPBACK,
    TARGET_CORE,
    Managed,
    StartupError,
    free_port,
    pinned,
    process_tree,
    start,
    wait_http_ok,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "replicas.json"
RUN_ROOT = BENCH_DIR / ".run"
CONNECTIONS = 64
GOAL_SCALING = 1.7
GOAL_REDIS_P99_MS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
console = Console(stderr=True)


def start_redis(run_dir: Path, stack: contextlib.ExitStack) -> str:
    """redis-server on core 1 with the load generator and the mock; no persistence (limits are ephemeral)."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
    server = start("redis", pinned(LOAD_CORE, argv), run_dir / "redis.log")
    stack.callback(server.stop)
    import redis

    client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or not server.alive():
                raise StartupError(f"redis-server did not start:\n{server.log_tail()}") from None
            time.sleep(0.05)
    return f"redis://{LOOPBACK}:{port}/0"


def start_gateway(
    name: str,
    run_dir: Path,
    mock_base: str,
    storage: str,
    workers: int,
    cores: str,
    stack: contextlib.ExitStack,
    storage_timeout_ms: float | None = None,
    detect: str | None = None,
) -> Target:
    """A gateway with auth, limits (high enough never to refuse) and the event log; online detection off, or (with
    ``detect``) on: "process" keeps account state in each process, a Redis URL shares it (``detect.state_url``)."""
    data_dir = run_dir / f"{name}-data"
    env = clean_env()
    # INFO: one "gateway started" line per worker (nothing is logged per call). The clustering job is background
    # analysis in a process of its own, not part of serving a call.
    env |= {"DISTILLGUARD_LOGGING__LEVEL": "INFO", "DISTILLGUARD_CLUSTERS__ENABLED": "false"}
    env["DISTILLGUARD_DETECT__ENABLED"] = "false" if detect is None else "true"
    if detect is not None and detect != "process":
        env["DISTILLGUARD_DETECT__STATE_URL"] = detect
    env["DISTILLGUARD_LIMITS__STORAGE_URI"] = storage
    if storage_timeout_ms is not None:
        env["DISTILLGUARD_LIMITS__STORAGE_TIMEOUT_MS"] = str(storage_timeout_ms)
    data = ["--data-dir", str(data_dir)]
    created = json.loads(
        _cli(["keys", "create", *data, "--account", BENCH_ACCOUNT, "--tier", "enterprise", "--json"], env)
    )
    _cli(
        [
            "accounts",
            "set",
            BENCH_ACCOUNT,
            *data,
            "--requests-limit",
            HIGH_REQUESTS_LIMIT,
            "--tokens-limit",
            HIGH_TOKENS_LIMIT,
        ],
        env,
    )
    port = free_port()
    serve = [
        "serve",
        *data,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--upstream",
        mock_base,
        "--workers",
        str(workers),
    ]
    server = start(name, ["taskset", "-c", cores, str(DISTILLGUARD), *serve], run_dir / f"{name}.log", env)
    stack.callback(server.stop)
    target = Target(
        name,
        f"http://{LOOPBACK}:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {created['key']}"},
        server,
        {"workers": workers, "cores": cores, "limits_storage": storage.split(":")[0], "detect": detect or "off"},
    )
    wait_http_ok(server, f"http://{LOOPBACK}:{port}/readyz", 60)
    deadline = time.monotonic() + 60
    while _log_count(server, '"gateway started"') < workers:  # every worker, not just the first to answer
        if time.monotonic() > deadline:
            raise StartupError(f"{name}: not every worker started:\n{server.log_tail()}")
        time.sleep(0.2)
    sanity_call(target)
    return target


def _log_count(server: Managed, text: str) -> int:
    return server.log_path.read_text(errors="replace").count(text)


def gateway_cpu_s(server: Managed) -> float:
    """User + system CPU seconds of the gateway's process tree so far."""
    total = 0
    for pid in process_tree(server.pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def closed_loop(target: Target, run_dir: Path, seconds: int, warmup_s: int) -> dict[str, Any]:
    body = json.dumps(REQUEST, separators=(",", ":")).encode()
    script = write_script(run_dir / f"wrk-{target.name}.lua", body, target.headers)
    run_wrk(target.url, script, 8, warmup_s)
    cpu_before = gateway_cpu_s(target.server)
    row = run_wrk(target.url, script, CONNECTIONS, seconds)
    row["gateway_cpu_s"] = round(gateway_cpu_s(target.server) - cpu_before, 2)
    row["calls_per_gateway_cpu_s"] = row["requests"] / row["gateway_cpu_s"] if row["gateway_cpu_s"] else None
    row["limits_unavailable_logged"] = _log_count(target.server, "rate-limit storage unavailable")
    console.log(
        f"{target.name}: {row['rps']:,.0f} req/s  p50 {row['latency_ms']['p50']:.2f} ms  "
        f"p99 {row['latency_ms']['p99']:.2f} ms  gateway CPU {row['gateway_cpu_s']:.1f} s  "
        f"non-2xx {row['non_2xx']}  fail-mode outages {row['limits_unavailable_logged']}"
    )
    return row


def open_loop(target: Target, run_dir: Path, rate: float, seconds: float) -> dict[str, Any]:
    body_file = run_dir / "request.json"
    body_file.write_bytes(json.dumps(REQUEST, separators=(",", ":")).encode())
    argv = [str(PYTHON), str(BENCH_DIR / "loadgen.py"), "--url", target.url, "--body-file", str(body_file)]
    argv += ["--rate", str(rate), "--duration", str(seconds), "--warmup", "1"]
    for name, value in target.headers.items():
        argv += ["--header", f"{name}: {value}"]
    done = subprocess.run(pinned(LOAD_CORE, argv), capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = urllib.request.urlopen(target.url.replace("/v1/chat/completions", "/metrics"), timeout=5).read()  # noqa: S310
    result["limits_storage"] = storage_summary(metrics.decode())
    lat = result["latency_ms"]
    console.log(
        f"{target.name}: open loop {rate:.0f} req/s  p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms  "
        f"non-2xx {result['non_2xx']}  timeouts {result['timeouts']}"
    )
    return result


def online_state_summary(target: Target) -> dict[str, float]:
    """The shared-state counters of one worker (each worker has its own registry; /metrics reaches one of them)."""
    text = urllib.request.urlopen(target.url.replace("/v1/chat/completions", "/metrics"), timeout=5).read().decode()  # noqa: S310
    out = {}
    for name in ("rounds_total", "failures_total", "conflicts_total", "adopted_total", "pending_calls"):
        found = re.search(rf"^distillguard_online_state_{name} (\S+)", text, re.MULTILINE)
        out[name] = float(found.group(1)) if found else float("nan")
    return out


def storage_summary(metrics: str) -> dict[str, Any] | None:
    """Mean Redis round trip of acquisitions as the gateway timed them (its histogram), and fail-mode calls."""

    def value(pattern: str) -> float:
        found = re.search(pattern, metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    count = value(r'^distillguard_limits_storage_seconds_count\{operation="acquire"\} (\S+)')
    if not count:
        return None
    total = value(r'^distillguard_limits_storage_seconds_sum\{operation="acquire"\} (\S+)')
    return {
        "acquisitions": int(count),
        "mean_ms": round(1000 * total / count, 3),
        "at_most_1ms_share": round(
            value(r'^distillguard_limits_storage_seconds_bucket\{le="0\.001",operation="acquire"\} (\S+)') / count, 4
        ),
        "fail_mode_calls": value(r'^distillguard_limits_fail_mode_calls_total\{mode="open"\} (\S+)'),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds, warmup_s, open_s = (4, 1, 4.0) if args.quick else (10, 3, 10.0)
    started = dt.datetime.now(dt.UTC)
    run_dir = RUN_ROOT / f"replicas-{started.strftime('%Y%m%dT%H%M%SZ')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "benchmark": "replicas",
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(sys.orig_argv),
        "quick": args.quick,
        "machine": machine_info(),
        "git": git_revision(),
        "request": REQUEST,
        "closed_loop_storage_timeout_ms": args.storage_timeout_ms,
        "closed_loop": {},
        "open_loop": {},
    }
    both = f"{TARGET_CORE},{LOAD_CORE}"
    layouts: list[tuple[str, int, str, str | None]] = [
        ("1 process, pinned", 1, str(TARGET_CORE), None),
        ("1 process, 2 cores", 1, both, None),
        ("2 processes, 2 cores", 2, both, None),
    ]
    shared_state = "shared"  # replaced by the Redis URL once Redis runs
    if args.detect:
        layouts += [
            ("detection: 1 process, 2 cores", 1, both, "process"),
            ("detection, state in each process: 2 processes, 2 cores", 2, both, "process"),
            ("detection, state shared in Redis: 2 processes, 2 cores", 2, both, shared_state),
        ]
    with contextlib.ExitStack() as stack:
        _mock, mock_base = start_mock(run_dir, stack)
        redis_url = start_redis(run_dir, stack)
        for i, (label, workers, cores, detect) in enumerate(layouts):
            console.rule(label)
            with contextlib.ExitStack() as gateway_stack:
                target = start_gateway(
                    f"closed{i}",
                    run_dir,
                    mock_base,
                    redis_url,
                    workers,
                    cores,
                    gateway_stack,
                    args.storage_timeout_ms,
                    redis_url if detect == shared_state else detect,
                )
                results["closed_loop"][label] = {
                    "workers": workers,
                    "cores": cores,
                    "detect": detect or "off",
                    **closed_loop(target, run_dir, seconds, warmup_s),
                }
                if detect == shared_state:
                    results["closed_loop"][label]["online_state"] = online_state_summary(target)
        for storage in ("memory://", redis_url):
            label = "memory" if storage.startswith("memory") else "redis"
            console.rule(f"open loop, {label} limits")
            with contextlib.ExitStack() as gateway_stack:
                target = start_gateway(f"open-{label}", run_dir, mock_base, storage, 1, str(TARGET_CORE), gateway_stack)
                open_loop(target, run_dir, args.rate, 1.0)  # warm the process (imports, pools, script cache)
                results["open_loop"][label] = open_loop(target, run_dir, args.rate, open_s)
    closed = results["closed_loop"]
    one, one_shared, two = (closed[label]["rps"] for label, _, _, _ in layouts[:3])
    per_cpu = [closed[label]["calls_per_gateway_cpu_s"] for label, _, _, _ in layouts[:3]]
    memory, shared = results["open_loop"]["memory"]["latency_ms"], results["open_loop"]["redis"]["latency_ms"]
    results["summary"] = {
        "two_vs_one_pinned": round(two / one, 3),
        "two_vs_one_same_cores": round(two / one_shared, 3),
        "calls_per_gateway_cpu_s_two_vs_one": round(per_cpu[2] / per_cpu[0], 3) if per_cpu[0] and per_cpu[2] else None,
        "redis_added_p50_ms": round(shared["p50"] - memory["p50"], 3),
        "redis_added_p99_ms": round(shared["p99"] - memory["p99"], 3),
        "open_loop_rate": args.rate,
    }
    if args.detect:
        one_detect, _, two_shared = (closed[label]["rps"] for label, _, _, _ in layouts[3:])
        results["summary"]["detect_shared_two_vs_one"] = round(two_shared / one_detect, 3)
    results["duration_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    return results


def report(results: dict[str, Any], out: Console) -> str:
    table = Table(title=f"replicas, closed loop at {CONNECTIONS} connections, limits on Redis")
    for column in ("layout", "req/s", "p50 ms", "p99 ms", "gateway CPU s", "calls / gateway CPU s", "non-2xx"):
        table.add_column(column)
    md = [
        f"| layout (closed loop, {CONNECTIONS} connections, Redis limits) | req/s | p50 ms | p99 ms "
        "| calls per gateway CPU-second |",
        "|---|---|---|---|---|",
    ]
    for label, row in results["closed_loop"].items():
        per_cpu = row["calls_per_gateway_cpu_s"]
        cells = [
            label,
            f"{row['rps']:,.0f}",
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p99']:.2f}",
            f"{row['gateway_cpu_s']:.1f}",
            f"{per_cpu:,.0f}" if per_cpu else "n/a",
            str(row["non_2xx"]),
        ]
        table.add_row(*cells)
        md.append(f"| {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | {cells[5]} |")
    out.print(table)
    s = results["summary"]
    rate = s["open_loop_rate"]
    md += [
        "",
        f"| open loop, {rate:.0f} req/s, 1 process pinned | p50 ms | p99 ms | mean Redis round trip (gateway-timed) |",
        "|---|---|---|---|",
    ]
    for label, row in results["open_loop"].items():
        lat, storage = row["latency_ms"], row.get("limits_storage")
        mean = f"{storage['mean_ms']:.3f} ms" if storage else "-"
        md.append(f"| {label} limits | {lat['p50']:.2f} | {lat['p99']:.2f} | {mean} |")
    md.append(f"| **Redis adds** | {s['redis_added_p50_ms']:+.2f} | {s['redis_added_p99_ms']:+.2f} | |")
    md += [
        "",
        f"2 processes / 1 process pinned: **{s['two_vs_one_pinned']:.2f}x**; / 1 process on the same 2 cores: "
        f"**{s['two_vs_one_same_cores']:.2f}x** (goal {GOAL_SCALING}x); calls per gateway CPU-second, 2 vs 1: "
        f"{s['calls_per_gateway_cpu_s_two_vs_one']}x. Redis adds p99 {s['redis_added_p99_ms']:+.2f} ms "
        f"(goal <= {GOAL_REDIS_P99_MS} ms).",
    ]
    if "detect_shared_two_vs_one" in s:
        md.append(
            f"With online detection, state shared in Redis, 2 processes / 1 process on the same cores: "
            f"**{s['detect_shared_two_vs_one']:.2f}x**."
        )
    return "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to quote")
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests per second")
    parser.add_argument(
        "--storage-timeout-ms",
        type=float,
        default=None,
        help="[limits] storage_timeout_ms of the closed-loop gateways (default: the gateway's own, 50)",
    )
    parser.add_argument(
        "--detect",
        action="store_true",
        help="also measure online detection: state in each process against state shared in Redis",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result JSON (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    preflight()
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    out = Console() if sys.stdout.isatty() else Console(width=160)
    md = report(results, out)
    out.print(f"\nresults: {args.out}   took {results['duration_s']:.0f}s\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
