"""Gateway benchmark: the mock upstream alone, distillguard and the LiteLLM proxy, side by side in one run.

    .venv/bin/python bench/gateway.py [--quick] [--out bench/results/gateway.json]

Every target is one server process pinned to core 0 (``taskset -c 0``); the mock upstream they forward to and
the load generators share core 1. Per target: closed-loop throughput with wrk at 1, 8 and 64 connections, open-loop
latency at a fixed offered rate (bench/loadgen.py), and resident memory after the load. docs/benchmarks.md explains
the method and holds the latest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

import litellm_setup
from closed_loop import run_wrk, write_script
from procs import (
    LOAD_CORE,
    LOOPBACK,
    TARGET_CORE,
    Managed,
    StartupError,
    cpu_busy_pct,
    free_port,
    pinned,
    post_json,
    start,
    tree_rss_bytes,
    wait_http_ok,
)
from report import added_latency, print_report

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RUN_ROOT = BENCH_DIR / ".run"
DEFAULT_OUT = BENCH_DIR / "results" / "gateway.json"
PYTHON = Path(sys.executable)
DISTILLGUARD = PYTHON.parent / "distillguard"

MODEL = "mock-gpt"
# A realistic small chat call: one user message of about 70 characters, a bounded answer.
REQUEST = {
    "model": MODEL,
    "messages": [
        {"role": "user", "content": "Summarise the main causes of the French Revolution in three short points."}
    ],
    "max_tokens": 64,
}
BENCH_ACCOUNT = "bench"
# Limits stay on (checked and charged on every call) but are set far above what the run can reach.
HIGH_REQUESTS_LIMIT = "100000000/minute"
HIGH_TOKENS_LIMIT = "100000000000/minute"
READY_TIMEOUT_S = {"direct": 30.0, "distillguard": 30.0, "distillguard+detect": 30.0, "litellm": 120.0}

console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    connections: tuple[int, ...]
    closed_s: int
    warmup_s: int
    open_rate: float
    open_s: float
    open_warmup_s: float
    open_timeout_s: float
    pause_s: float

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                (1, 8, 64),
                closed_s=3,
                warmup_s=1,
                open_rate=300.0,
                open_s=4.0,
                open_warmup_s=1.0,
                open_timeout_s=5.0,
                pause_s=0.5,
            )
        return cls(
            (1, 8, 64),
            closed_s=10,
            warmup_s=3,
            open_rate=300.0,
            open_s=10.0,
            open_warmup_s=1.0,
            open_timeout_s=5.0,
            pause_s=1.0,
        )


@dataclass
class Target:
    """A running server to measure: where to send calls, with which headers, and the process to weigh."""

    name: str
    url: str
    headers: dict[str, str]
    server: Managed
    info: dict[str, Any] = field(default_factory=dict)
    check_response: Callable[[dict[str, str]], str | None] | None = None


# machine ----------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_total_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gb": round(mem_total_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "wrk": _first_line(["wrk", "--version"]),
    }


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def _first_line(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    return "unknown"


def git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return head + ("+dirty-src" if dirty else "")
    return "unknown"


def distillguard_version() -> str:
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        return version("distillguard")
    return "unknown"


# targets ----------------------------------------------------------------------------------------------
def clean_env() -> dict[str, str]:
    """The caller's environment without any DISTILLGUARD_* setting, so the run does not depend on the shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}


def start_mock(run_dir: Path, stack: contextlib.ExitStack) -> tuple[Managed, str]:
    port = free_port()
    argv = pinned(LOAD_CORE, [str(DISTILLGUARD), "mock-upstream", "--host", LOOPBACK, "--port", str(port)])
    mock = start("mock upstream", argv, run_dir / "mock.log", clean_env())
    stack.callback(mock.stop)
    base = f"http://{LOOPBACK}:{port}/v1"
    wait_http_ok(mock, f"{base}/models", READY_TIMEOUT_S["direct"])
    return mock, base


def direct_target(mock: Managed, mock_base: str) -> Target:
    return Target(
        "direct",
        f"{mock_base}/chat/completions",
        {"Authorization": "Bearer sk-dummy"},
        mock,
        {"process": "distillguard mock-upstream (aiohttp), pinned to core 1 with the load generators"},
    )


def _cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([str(DISTILLGUARD), *args], capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise StartupError(f"`distillguard {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def start_distillguard(run_dir: Path, mock_base: str, stack: contextlib.ExitStack, detect: bool = False) -> Target:
    """The gateway with auth, limits and the event log; with ``detect``, online detection too (the default)."""
    name = "distillguard+detect" if detect else "distillguard"
    data_dir = run_dir / f"{name}-data"
    env = clean_env()
    env["DISTILLGUARD_LOGGING__LEVEL"] = "WARNING"
    env["DISTILLGUARD_DETECT__ENABLED"] = "true" if detect else "false"
    # The campaign clustering job is background analysis in a process of its own, not part of serving a call; it
    # would share the pinned core with the gateway if one of its runs fell inside a measurement.
    env["DISTILLGUARD_CLUSTERS__ENABLED"] = "false"
    data = ["--data-dir", str(data_dir)]
    key_args = ["keys", "create", *data, "--account", BENCH_ACCOUNT, "--tier", "enterprise", "--json"]
    created = json.loads(_cli(key_args, env))
    limits = ["--requests-limit", HIGH_REQUESTS_LIMIT, "--tokens-limit", HIGH_TOKENS_LIMIT]
    _cli(["accounts", "set", BENCH_ACCOUNT, *data, *limits], env)
    port = free_port()
    serve = ["serve", *data, "--host", LOOPBACK, "--port", str(port), "--upstream", mock_base]
    argv = pinned(TARGET_CORE, [str(DISTILLGUARD), *serve])
    server = start(name, argv, run_dir / f"{name}.log", env)
    stack.callback(server.stop)
    target = Target(
        name,
        f"http://{LOOPBACK}:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {created['key']}"},
        server,
        {
            "process": "distillguard serve (uvicorn + uvloop, one process), pinned to core 0",
            "online_detection": detect,
            "version": distillguard_version(),
            "data_dir": str(data_dir),
            "limits": {"tier": "enterprise", "requests": HIGH_REQUESTS_LIMIT, "tokens": HIGH_TOKENS_LIMIT},
        },
        check_response=_limits_evaluated,
    )
    ready = wait_http_ok(server, f"http://{LOOPBACK}:{port}/healthz", READY_TIMEOUT_S[name])
    target.info["ready_s"] = round(ready, 2)
    return target


def _limits_evaluated(headers: dict[str, str]) -> str | None:
    if "x-ratelimit-remaining-requests" not in headers:
        return "the gateway answered without x-ratelimit-* headers: are the limits evaluated?"
    return None


def start_litellm(run_dir: Path, mock_base: str, stack: contextlib.ExitStack) -> Target:
    with console.status(
        f"installing litellm[proxy]=={litellm_setup.LITELLM_VERSION} (once) into {litellm_setup.VENV_DIR}"
    ):
        install = litellm_setup.ensure_installed(run_dir / "litellm-install.log")
    config = litellm_setup.write_config(run_dir / "litellm.yaml", mock_base)
    port = free_port()
    argv = pinned(TARGET_CORE, litellm_setup.command(install, config, port))
    server = start("litellm", argv, run_dir / "litellm.log", litellm_setup.environment(clean_env()))
    stack.callback(server.stop)
    target = Target(
        "litellm",
        f"http://{LOOPBACK}:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {litellm_setup.LITELLM_MASTER_KEY}"},
        server,
        {
            "process": "litellm proxy (--num_workers 1), pinned to core 0; master key, no database",
            "version": install.version,
            "config": config.read_text(),
        },
    )
    ready = wait_http_ok(server, f"http://{LOOPBACK}:{port}/health/liveliness", READY_TIMEOUT_S["litellm"])
    target.info["ready_s"] = round(ready, 2)
    return target


# measurements -----------------------------------------------------------------------------------------
def _mb(nbytes: int) -> float:
    return round(nbytes / 1e6, 1)


def sanity_call(target: Target) -> None:
    """One call must come back 200 with a completion (and, for the gateway, rate-limit headers)."""
    body = json.dumps(REQUEST).encode()
    status, payload, headers = post_json(target.url, body, target.headers)
    if status != 200:
        raise StartupError(f"{target.name}: test call answered {status}: {payload[:300]!r}")
    choices = json.loads(payload).get("choices")
    if not choices:
        raise StartupError(f"{target.name}: test call answered without choices: {payload[:300]!r}")
    if target.check_response is not None and (problem := target.check_response(headers)):
        raise StartupError(f"{target.name}: {problem}")


def open_loop(target: Target, plan: Plan, body_file: Path) -> dict[str, Any]:
    argv = [str(PYTHON), str(BENCH_DIR / "loadgen.py"), "--url", target.url, "--body-file", str(body_file)]
    argv += ["--rate", str(plan.open_rate), "--duration", str(plan.open_s), "--warmup", str(plan.open_warmup_s)]
    argv += ["--timeout", str(plan.open_timeout_s)]
    for name, value in target.headers.items():
        argv += ["--header", f"{name}: {value}"]
    limit = plan.open_warmup_s + plan.open_s + plan.open_timeout_s + 60
    done = subprocess.run(pinned(LOAD_CORE, argv), capture_output=True, text=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(target: Target, plan: Plan, run_dir: Path, baseline: Target | None) -> dict[str, Any]:
    """Everything we measure on one running target; the target is left running (the caller stops it).

    With a ``baseline`` (the mock upstream, running all along), an open-loop run straight at it comes just before
    the target's own, so that the target's added latency is the difference between two neighbouring runs.
    """
    body = json.dumps(REQUEST, separators=(",", ":")).encode()
    body_file = run_dir / "request.json"
    body_file.write_bytes(body)
    script = write_script(run_dir / f"wrk-{target.name}.lua", body, target.headers)
    out: dict[str, Any] = {"available": True, **target.info, "url": target.url}
    answered = 0

    sanity_call(target)
    answered += 1
    rss, _ = tree_rss_bytes(target.server.pid)
    out["rss_idle_mb"] = _mb(rss)

    console.log(f"{target.name}: warm-up, {plan.warmup_s}s at 8 connections")
    warm = run_wrk(target.url, script, 8, plan.warmup_s)
    answered += warm["requests"]
    out["warmup"] = {"connections": 8, "seconds": plan.warmup_s, "requests": warm["requests"], "rps": warm["rps"]}

    out["closed_loop"] = []
    for connections in plan.connections:
        time.sleep(plan.pause_s)
        row = run_wrk(target.url, script, connections, plan.closed_s)
        answered += row["requests"]
        out["closed_loop"].append(row)
        console.log(
            f"{target.name}: c={connections:<3} {row['rps']:>9,.0f} req/s  p50 {row['latency_ms']['p50']:.2f} ms  "
            f"p99 {row['latency_ms']['p99']:.2f} ms  non-2xx {row['non_2xx']}  socket errors {row['socket_errors']}"
        )

    if baseline is not None:
        time.sleep(plan.pause_s)
        out["open_loop_baseline"] = _open_loop_logged(baseline, plan, body_file, f"{target.name} (baseline: direct)")
    time.sleep(plan.pause_s)
    ol = _open_loop_logged(target, plan, body_file, target.name)
    answered += ol["warmup_answered"] + sum(ol["status_counts"].values())
    out["open_loop"] = ol

    rss, processes = tree_rss_bytes(target.server.pid)
    out["rss_mb"] = _mb(rss)
    out["rss_processes"] = processes
    out["calls_answered"] = answered
    console.log(f"{target.name}: RSS after load {out['rss_mb']:.1f} MB ({processes} process(es))")
    return out


def _open_loop_logged(target: Target, plan: Plan, body_file: Path, label: str) -> dict[str, Any]:
    console.log(
        f"{label}: open loop, {plan.open_rate:.0f} req/s for {plan.open_s:g}s (+{plan.open_warmup_s:g}s warm-up)"
    )
    ol = open_loop(target, plan, body_file)
    lat = ol["latency_ms"]
    console.log(
        f"{label}: open loop ok {ol['ok_rps']:,.0f} req/s  p50 {_num(lat['p50'])} ms  p99 {_num(lat['p99'])} ms  "
        f"max {_num(lat['max'])} ms  timeouts {ol['timeouts']}  errors {ol['errors']}  non-2xx {ol['non_2xx']}"
    )
    return ol


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def event_log_summary(data_dir: Path, calls_answered: int) -> dict[str, Any]:
    """Rows in the gateway's event log after a graceful stop, by status."""
    conn = sqlite3.connect(f"file:{data_dir / 'events.db'}?mode=ro", uri=True)
    try:
        by_status = dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())
    finally:
        conn.close()
    return {
        "events": sum(by_status.values()),
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "calls_answered": calls_answered,
    }


def run_target(
    name: str, starter: Callable[[contextlib.ExitStack], Target], plan: Plan, run_dir: Path, baseline: Target | None
) -> dict[str, Any]:
    """Start, measure and stop one target; any failure makes it 'unavailable' with the reason, not a crash."""
    console.rule(name)
    with contextlib.ExitStack() as stack:
        try:
            target = starter(stack)
            result = measure(target, plan, run_dir, baseline)
        except (
            StartupError,
            litellm_setup.LiteLLMUnavailable,
            RuntimeError,
            OSError,
            ValueError,
            subprocess.SubprocessError,
        ) as exc:
            console.log(f"[red]{name} unavailable:[/red] {exc}")
            return {"available": False, "reason": str(exc).strip()}
        if name != "direct":  # the direct target is the shared mock upstream: it runs until the end
            # uvicorn re-raises SIGTERM once its graceful shutdown is done, so -15 is the normal exit code here.
            started = time.monotonic()
            result["exit_code"] = target.server.stop()
            result["stop_s"] = round(time.monotonic() - started, 2)
        if name.startswith("distillguard"):
            with contextlib.suppress(sqlite3.Error, OSError):
                result["event_log"] = event_log_summary(Path(target.info["data_dir"]), result["calls_answered"])
                console.log(f"distillguard: event log {result['event_log']}")
        return result


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM/SIGHUP become KeyboardInterrupt, so that every `finally` and ExitStack still stops our servers."""

    def raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def preflight() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
    if not DISTILLGUARD.exists():
        raise SystemExit(f"{DISTILLGUARD} not found: run with the project's virtualenv (.venv/bin/python)")
    cores = os.sched_getaffinity(0)
    if not {TARGET_CORE, LOAD_CORE} <= cores:
        raise SystemExit(f"cores {TARGET_CORE} and {LOAD_CORE} are needed; this process may use {sorted(cores)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (about 70 s in all): a smoke test")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result JSON (default {DEFAULT_OUT})")
    parser.add_argument("--skip-litellm", action="store_true", help="do not install or measure LiteLLM")
    parser.add_argument("--keep-data", action="store_true", help="keep the gateway's event log in bench/.run/")
    args = parser.parse_args(argv)
    preflight()
    plan = Plan.for_mode(args.quick)
    started = dt.datetime.now(dt.UTC)
    run_dir = RUN_ROOT / started.strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "benchmark": "gateway",
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(sys.orig_argv),
        "quick": args.quick,
        "machine": machine_info(),
        "git": git_revision(),
        "plan": asdict(plan),
        "request": REQUEST,
        "layout": {"targets_core": TARGET_CORE, "mock_and_load_core": LOAD_CORE},
        "cpu_busy_before_pct": cpu_busy_pct(1.0),
        "targets": {},
    }
    console.log(f"run directory {run_dir}")
    if max(results["cpu_busy_before_pct"].values()) > 10:
        console.log(f"[yellow]warning:[/yellow] the machine is not idle: {results['cpu_busy_before_pct']} % busy")
    with terminate_on_sigterm(), contextlib.ExitStack() as stack:
        mock, mock_base = start_mock(run_dir, stack)
        direct = direct_target(mock, mock_base)
        targets: list[tuple[str, Callable[[contextlib.ExitStack], Target]]] = [
            ("direct", lambda _stack: direct),
            ("distillguard", lambda s: start_distillguard(run_dir, mock_base, s)),
            ("distillguard+detect", lambda s: start_distillguard(run_dir, mock_base, s, detect=True)),
        ]
        if args.skip_litellm:
            results["targets"]["litellm"] = {"available": False, "reason": "skipped (--skip-litellm)"}
        else:
            targets.append(("litellm", lambda s: start_litellm(run_dir, mock_base, s)))
        for name, starter in targets:
            baseline = None if name == "direct" else direct
            results["targets"][name] = run_target(name, starter, plan, run_dir, baseline)
            if not mock.alive():
                raise SystemExit(f"the mock upstream died:\n{mock.log_tail()}")
    for name in ("distillguard", "distillguard+detect", "litellm"):
        target = results["targets"].get(name, {})
        if target.get("available"):
            target["added_latency_ms"] = added_latency(target, results["targets"]["direct"])
    results["duration_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    if not args.keep_data:
        for name in ("distillguard", "distillguard+detect"):
            shutil.rmtree(run_dir / f"{name}-data", ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    out_console = Console() if sys.stdout.isatty() else Console(width=160)
    md = print_report(results, out_console)
    out_console.print(f"\nresults: {args.out}   run directory: {run_dir}   took {results['duration_s']:.0f}s\n")
    out_console.rule("markdown")
    print(md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: every server this run started has been stopped")
        sys.exit(130)
