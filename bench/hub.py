"""TAXII hub benchmark: `distillguard hub serve` and OASIS's reference server, medallion, side by side in one run.

    .venv/bin/python bench/hub.py [--quick] [--objects 10000] [--skip-medallion] [--out bench/results/hub.json]

Each server is one process pinned to core 0 (``taskset -c 0``); the load (wrk, closed loop) runs on core 1. A
server gets STIX 2.1 indicators POSTed by one loader in envelopes of 500 (ingest objects/s is reported), then:
- single-object GETs by id (``objects/{id}/``, cycling through 1000 ids), and
- pages of 100 (``objects/?limit=100&added_after=...``, cycling through 50 starting points spread over the data).
One request of each kind is checked to return what it should before the timed runs; wrk counts non-2xx answers.

The hub is measured with ``--objects`` (10,000) at 1, 8 and 64 connections. medallion's in-memory backend filters
a collection in quadratic time (a page of 100 takes seconds at 1,000 objects), so the side-by-side runs load both
servers with ``--compare-objects`` (1,000) and use 1 and 8 connections. docs/hub.md holds the latest figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import stix2
from rich.console import Console

import medallion_setup
from closed_loop import run_wrk, write_script
from gateway import clean_env, git_revision, machine_info, preflight, terminate_on_sigterm
from procs import (
    LOAD_CORE,
    LOOPBACK,
    TARGET_CORE,
    Managed,
    StartupError,
    free_port,
    pinned,
    post_json,
    start,
    tree_rss_bytes,
    wait_http_ok,
)
from report import markdown, rich_table

BENCH_DIR = Path(__file__).resolve().parent
RUN_ROOT = BENCH_DIR / ".run"
DEFAULT_OUT = BENCH_DIR / "results" / "hub.json"
PYTHON = Path(sys.executable)
TAXII = "application/taxii+json;version=2.1"
BATCH = 500
PAGE = 100
IDS_CYCLED = 1000
PAGE_STARTS = 50
MAX_PAGE = 1000
MAX_CONTENT_LENGTH = 10 * 1024 * 1024

console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    objects: int
    compare_objects: int
    connections: tuple[int, ...]
    compare_connections: tuple[int, ...]
    seconds: int
    warmup_s: int
    # Long enough for medallion's slowest answers to count as answers, not timeouts.
    timeout_s: int = 30

    @classmethod
    def for_mode(cls, quick: bool, objects: int, compare_objects: int) -> Plan:
        seconds, warmup = (3, 1) if quick else (10, 3)
        return cls(objects, compare_objects, (1, 8, 64), (1, 8), seconds, warmup)


@dataclass
class Target:
    name: str
    objects_url: str
    headers: dict[str, str]
    server: Managed
    info: dict[str, Any] = field(default_factory=dict)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get_json(url: str, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback http only
    with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310
        return json.loads(resp.read()), {k.lower(): v for k, v in resp.headers.items()}


# the data ---------------------------------------------------------------------------------------------
def make_objects(count: int) -> list[dict[str, Any]]:
    """``count`` valid indicators, as members share them (built with the OASIS stix2 library)."""
    out = []
    for n in range(count):
        indicator = stix2.Indicator(
            name=f"distillation template {n}",
            description="Prompt template shared by the accounts of one extraction campaign.",
            pattern=f"[x-distillguard-template:value = 'tpl-{n:06d}']",
            pattern_type="stix",
            valid_from="2026-01-01T00:00:00Z",
            labels=["model-extraction"],
        )
        out.append(json.loads(indicator.serialize()))
    return out


# targets ----------------------------------------------------------------------------------------------
def _hub_cli(args: list[str], env: dict[str, str]) -> str:
    argv = [str(PYTHON), "-m", "distillguard.intel.hub", *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise StartupError(f"`distillguard hub {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def start_hub(run_dir: Path, stack: contextlib.ExitStack) -> Target:
    data_dir = run_dir / "hub-data"
    env = clean_env()
    data = ["--data-dir", str(data_dir)]
    secret = json.loads(_hub_cli(["member", "add", "bench", "--json", *data], env))["secret"]
    collection = json.loads(_hub_cli(["collection", "create", "bench", "--json", *data], env))["id"]
    _hub_cli(["grant", "bench", "bench", "--read", "--write", *data], env)
    port = free_port()
    serve = ["serve", *data, "--host", LOOPBACK, "--port", str(port)]
    argv = pinned(TARGET_CORE, [str(PYTHON), "-m", "distillguard.intel.hub", *serve])
    server = start("distillguard hub", argv, run_dir / "hub.log", env)
    stack.callback(server.stop)
    ready = wait_http_ok(server, f"http://{LOOPBACK}:{port}/healthz", 60)
    return Target(
        "distillguard",
        f"http://{LOOPBACK}:{port}/taxii2/api/collections/{collection}/objects/",
        {"Authorization": basic("bench", secret), "Accept": TAXII},
        server,
        {
            "process": "distillguard hub serve (uvicorn + uvloop, one process, SQLite WAL), pinned to core 0",
            "ready_s": round(ready, 2),
            "validation": "every posted object through stix2validator",
        },
    )


def start_medallion(run_dir: Path, stack: contextlib.ExitStack) -> Target:
    with console.status(
        f"installing medallion=={medallion_setup.MEDALLION_VERSION} (once) into {medallion_setup.VENV_DIR}"
    ):
        install = medallion_setup.ensure_installed(run_dir / "medallion-install.log")
    port = free_port()
    collection = str(uuid.uuid4())
    config = medallion_setup.write_config(run_dir, port, collection, MAX_PAGE, MAX_CONTENT_LENGTH)
    argv = pinned(TARGET_CORE, medallion_setup.command(install, config, port))
    server = start("medallion", argv, run_dir / "medallion.log", clean_env())
    stack.callback(server.stop)
    headers = {"Authorization": basic(medallion_setup.USER, medallion_setup.PASSWORD), "Accept": TAXII}
    ready = wait_http_ok(server, f"http://{LOOPBACK}:{port}/taxii2/", 60, headers)
    return Target(
        "medallion",
        f"http://{LOOPBACK}:{port}/{medallion_setup.API_ROOT}/collections/{collection}/objects/",
        headers,
        server,
        {
            "process": "medallion (its own server: Flask/Werkzeug, threaded; in-memory backend), pinned to core 0",
            "version": install.version,
            "ready_s": round(ready, 2),
            "validation": "none (medallion stores what it is given)",
        },
    )


# measurements -----------------------------------------------------------------------------------------
def load(target: Target, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """POST everything in envelopes of BATCH; every object must be accepted."""
    headers = {**target.headers, "Content-Type": TAXII}
    started = time.perf_counter()
    accepted = 0
    for first in range(0, len(objects), BATCH):
        body = json.dumps({"objects": objects[first : first + BATCH]}).encode()
        status, payload, _ = post_json(target.objects_url, body, headers, timeout_s=600)
        if status != 202:
            raise StartupError(f"{target.name}: POST answered {status}: {payload[:300]!r}")
        accepted += json.loads(payload)["success_count"]
    seconds = time.perf_counter() - started
    if accepted != len(objects):
        raise StartupError(f"{target.name}: accepted {accepted} of {len(objects)} objects")
    return {"objects": accepted, "seconds": round(seconds, 2), "objects_per_s": round(accepted / seconds, 1)}


def request_paths(target: Target, objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The GETs to cycle through: objects by id, and pages from starting points spread over the data (their
    date_added from the server's own manifest, so each page starts where the server says objects are)."""
    base = target.objects_url.split("//", 1)[1].split("/", 1)[1]
    step = max(1, len(objects) // IDS_CYCLED)
    by_id = [f"/{base}{o['id']}/" for o in objects[::step][:IDS_CYCLED]]
    manifest_url = target.objects_url.replace("/objects/", "/manifest/") + f"?limit={MAX_PAGE}"
    manifest, _ = get_json(manifest_url, target.headers)
    stamps = [m["date_added"] for m in manifest["objects"]]
    # Starting points with a full page after them. medallion gives every object of one POST the same date_added,
    # so its distinct starting points are fewer.
    last_of_each = [i for i, s in enumerate(stamps) if i + 1 == len(stamps) or stamps[i + 1] != s]
    full = [stamps[i] for i in last_of_each if i < len(stamps) - PAGE]
    spread = max(1, len(full) // PAGE_STARTS)
    pages = [f"/{base}?limit={PAGE}&added_after={s}" for s in full[::spread][:PAGE_STARTS]]
    return {"object": by_id, "page": pages}


def check(target: Target, paths: dict[str, list[str]], objects: list[dict[str, Any]]) -> dict[str, float]:
    """One GET of each kind must return what it should; returns how long each took alone, in ms (the only
    latency there is for a server too slow to complete a request within a timed run)."""
    root = target.objects_url.split("/", 3)
    origin = f"{root[0]}//{root[2]}"
    started = time.perf_counter()
    one, _ = get_json(origin + paths["object"][0], target.headers)
    alone = {"object": (time.perf_counter() - started) * 1000}
    if [o["id"] for o in one.get("objects", [])] != [objects[0]["id"]]:
        raise StartupError(f"{target.name}: object by id returned {str(one)[:200]}")
    started = time.perf_counter()
    page, _ = get_json(origin + paths["page"][0], target.headers)
    alone["page"] = (time.perf_counter() - started) * 1000
    if len(page.get("objects", [])) != PAGE:
        raise StartupError(f"{target.name}: a page of {PAGE} returned {len(page.get('objects', []))} objects")
    return {kind: round(ms, 2) for kind, ms in alone.items()}


def get_script(path: Path, headers: dict[str, str], paths: list[str]) -> Path:
    """A wrk script GETting ``paths`` in turn (closed_loop.write_script's headers and summary, then GET)."""
    write_script(path, b"", headers)
    table = ",\n".join(json.dumps(p) for p in paths)
    path.write_text(
        path.read_text()
        + f"""
wrk.method = "GET"
wrk.body = nil
wrk.headers["Content-Type"] = nil
local paths = {{
{table}
}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
    )
    return path


def measure(
    target: Target, plan: Plan, run_dir: Path, objects: list[dict[str, Any]], connections: tuple[int, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {"available": True, **target.info, "objects": len(objects)}
    console.log(f"{target.name}: loading {len(objects):,} objects")
    out["ingest"] = load(target, objects)
    console.log(f"{target.name}: ingest {out['ingest']['objects_per_s']:,.0f} objects/s")
    paths = request_paths(target, objects)
    out["alone_ms"] = check(target, paths, objects)
    url = target.objects_url
    out["get"] = {}
    for kind, per_request in (("object", 1), ("page", PAGE)):
        script = get_script(run_dir / f"wrk-{target.name}-{len(objects)}-{kind}.lua", target.headers, paths[kind])
        run_wrk(url, script, 1, plan.warmup_s, timeout_s=plan.timeout_s)
        rows = []
        for conns in connections:
            row = run_wrk(url, script, conns, plan.seconds, timeout_s=plan.timeout_s)
            row["objects_per_s"] = row["rps"] * per_request
            rows.append(row)
            console.log(
                f"{target.name}: {kind:<6} c={conns:<3} {row['rps']:>8,.0f} req/s {row['objects_per_s']:>9,.0f} "
                f"objects/s  p50 {row['latency_ms']['p50']:.2f} ms  p99 {row['latency_ms']['p99']:.2f} ms  "
                f"non-2xx {row['non_2xx']}  socket errors {row['socket_errors']}"
            )
        out["get"][kind] = rows
    rss, processes = tree_rss_bytes(target.server.pid)
    out["rss_mb"] = round(rss / 1e6, 1)
    out["rss_processes"] = processes
    return out


def run_target(
    name: str,
    starter: Callable[[contextlib.ExitStack], Target],
    plan: Plan,
    run_dir: Path,
    objects: list[dict[str, Any]],
    connections: tuple[int, ...],
) -> dict[str, Any]:
    console.rule(name)
    with contextlib.ExitStack() as stack:
        try:
            return measure(starter(stack), plan, run_dir, objects, connections)
        except (
            StartupError,
            medallion_setup.MedallionUnavailable,
            RuntimeError,
            OSError,
            ValueError,
            subprocess.SubprocessError,
        ) as exc:
            console.log(f"[red]{name} unavailable:[/red] {exc}")
            return {"available": False, "reason": str(exc).strip()}


# report -----------------------------------------------------------------------------------------------
GOAL_OBJECT_RPS = 500.0


def _latency(row: dict[str, Any], percentile: str) -> str:
    # wrk reports 0 ms when no request completed in the run.
    return f"{row['latency_ms'][percentile]:.2f}" if row["requests"] else "n/a (none completed)"


def table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["server", "GET", "conns", "req/s", "objects/s", "p50 ms", "p99 ms", "non-2xx", "errors"]
    rows: list[list[str]] = []
    for name, target in results["targets"].items():
        if not target.get("available"):
            rows.append([name, "unavailable", target.get("reason", "")[:80], "", "", "", "", "", ""])
            continue
        for kind, label in (("object", "one object by id"), ("page", f"page of {PAGE}")):
            for r in target["get"][kind]:
                rows.append(
                    [
                        name,
                        label,
                        str(r["connections"]),
                        f"{r['rps']:,.0f}",
                        f"{r['objects_per_s']:,.0f}",
                        _latency(r, "p50"),
                        _latency(r, "p99"),
                        str(r["non_2xx"]),
                        str(r["socket_errors"]),
                    ]
                )
    return header, rows


def summary_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "server",
        "ingest objects/s",
        "best object GETs/s",
        "best page objects/s",
        "one page alone ms",
        "RSS MB",
        "goal",
    ]
    rows = []
    for name, target in results["targets"].items():
        if not target.get("available"):
            continue
        valid = {k: [r for r in target["get"][k] if r["valid"]] for k in ("object", "page")}
        best = max((r["rps"] for r in valid["object"]), default=0.0)
        pages = max((r["objects_per_s"] for r in valid["page"]), default=0.0)
        goal = f">= {GOAL_OBJECT_RPS:.0f} object GETs/s: {'PASS' if best >= GOAL_OBJECT_RPS else 'MISS'}"
        is_goal_run = name.startswith("distillguard") and target["objects"] == results["plan"]["objects"]
        rows.append(
            [
                name,
                f"{target['ingest']['objects_per_s']:,.0f}",
                f"{best:,.0f}",
                f"{pages:,.0f}",
                f"{target['alone_ms']['page']:,.1f}",
                f"{target['rss_mb']:.1f}",
                goal if is_goal_run else "-",
            ]
        )
    return header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s runs instead of 10 s: a smoke test")
    parser.add_argument("--objects", type=int, default=10_000, help="indicators loaded into the hub")
    parser.add_argument(
        "--compare-objects", type=int, default=1_000, help="indicators loaded into each server for the comparison"
    )
    parser.add_argument("--skip-medallion", action="store_true", help="do not install or measure medallion")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result JSON (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    preflight()
    plan = Plan.for_mode(args.quick, args.objects, args.compare_objects)
    started = dt.datetime.now(dt.UTC)
    run_dir = RUN_ROOT / ("hub-" + started.strftime("%Y%m%dT%H%M%SZ"))
    run_dir.mkdir(parents=True, exist_ok=True)
    console.log(f"run directory {run_dir}; making {plan.objects:,} indicators")
    objects = make_objects(plan.objects)
    few = objects[: plan.compare_objects]
    results: dict[str, Any] = {
        "benchmark": "hub",
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(sys.orig_argv),
        "machine": machine_info(),
        "git": git_revision(),
        "plan": asdict(plan),
        "layout": {"server_core": TARGET_CORE, "load_core": LOAD_CORE},
        "requests": {
            "object": f"GET objects/{{id}}/, cycling through {IDS_CYCLED} ids",
            "page": f"GET objects/?limit={PAGE}&added_after=..., cycling through {PAGE_STARTS} starting points",
        },
        "targets": {},
    }
    hub = f"distillguard, {plan.objects:,} objects"
    compared = [f"distillguard, {plan.compare_objects:,} objects", f"medallion, {plan.compare_objects:,} objects"]
    with terminate_on_sigterm():
        results["targets"][hub] = run_target(
            hub, lambda s: start_hub(run_dir / "full", s), plan, run_dir, objects, plan.connections
        )
        results["targets"][compared[0]] = run_target(
            compared[0], lambda s: start_hub(run_dir / "compare", s), plan, run_dir, few, plan.compare_connections
        )
        if args.skip_medallion:
            results["targets"][compared[1]] = {"available": False, "reason": "skipped (--skip-medallion)"}
        else:
            results["targets"][compared[1]] = run_target(
                compared[1], lambda s: start_medallion(run_dir, s), plan, run_dir, few, plan.compare_connections
            )
    results["duration_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    for part in ("full", "compare"):
        shutil.rmtree(run_dir / part / "hub-data", ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    out_console = Console() if sys.stdout.isatty() else Console(width=160)
    sections = [("GET throughput (wrk, closed loop)", table(results)), ("Summary", summary_table(results))]
    for title, (header, rows) in sections:
        out_console.print(rich_table(title, header, rows))
    out_console.print(f"\nresults: {args.out}   run directory: {run_dir}   took {results['duration_s']:.0f}s\n")
    out_console.rule("markdown")
    print("\n\n".join(f"**{title}**\n\n{markdown(header, rows)}" for title, (header, rows) in sections))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: every server this run started has been stopped")
        sys.exit(130)
