"""Console pages at scale: how long each page and JSON endpoint takes with 100,000 accounts and 10,000,000 events.

    .venv/bin/python bench/console.py [--accounts 100000] [--events 10000000] [--rebuild] [--requests 20]
    .venv/bin/python bench/console.py --build-only        # just (re)build the data dir
    .venv/bin/python bench/console.py --accounts 2000 --events 100000 --data /tmp/console-small   # a quick run

Target (issue 9): every console page renders in <= 300 ms with 100,000 accounts and 10,000,000 events in the store.

Step one builds the data dir once (``bench/console_data.py``; cached under ``bench/.run/console-data/``, rebuilt
with ``--rebuild`` or when the scale or the generator changed): a week of a busy deployment, through the real
schemas and write paths. Step two starts ``distillguard console --data-dir`` on it (pinned to core 0; the client
runs on core 1), creates an admin token with ``CaseBook.create_admin_token`` (revoked at the end), logs in through
the login form like a browser, and times every page and JSON endpoint over HTTP: the first request (cold: nothing
cached in the console process, the OS page cache as the build left it), then ``--warmup`` discarded requests, then
``--requests`` timed ones, each from sending the request to the last byte of the body. Figures (p50/p95/max in ms,
page size in KB) go to bench/results/console.json with the command line, the machine and the data's manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

import console_data
import procs

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(__file__).resolve().parent / ".run"
TARGET_MS = 300.0
STARTUP_TIMEOUT_S = 120.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_data(path: Path, scale: console_data.Scale, rebuild: bool) -> dict[str, Any]:
    """The data dir's manifest, building the data first unless a build of the same scale and generator is there."""
    manifest_path = path / console_data.MANIFEST
    if not rebuild and manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if (
            manifest.get("scale") == asdict(scale)
            and manifest.get("generator_version") == console_data.GENERATOR_VERSION
        ):
            log(f"using the data built {manifest['built_at']} in {path} (--rebuild to build it again)")
            return manifest
        log(f"{path} holds another scale or generator version: rebuilding")
    free = os.statvfs(path.parent if path.parent.exists() else ROOT).f_bavail * os.statvfs(ROOT).f_frsize
    need = int(scale.events * 900)  # measured: ~700 bytes per event with its indexes, plus room for the WAL
    if free < need:
        raise SystemExit(
            f"not enough disk for {scale.events:,} events: {free / 1e9:.1f} GB free, ~{need / 1e9:.1f} GB needed"
        )
    return console_data.build(path, scale, log)


def _book(data_dir: Path, config: Path) -> tuple[Any, Any]:
    """The data dir's case book, as the CLI opens it (and its store, to close)."""
    from distillguard.config import load_settings
    from distillguard.respond.book import CaseBook
    from distillguard.store import open_store

    settings = load_settings(config, data_dir=data_dir)
    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    return CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds), store


def admin_token(data_dir: Path, config: Path) -> tuple[str, str]:
    """A fresh admin token for the bench (id, plaintext); only its keyed hash is stored."""
    book, store = _book(data_dir, config)
    try:
        token_id, plaintext = book.create_admin_token("console bench", "operator:bench")
        return str(token_id), str(plaintext)
    finally:
        store.close()


def revoke(data_dir: Path, config: Path, token_id: str) -> None:
    book, store = _book(data_dir, config)
    try:
        book.revoke_admin_token(token_id, "operator:bench")
    finally:
        store.close()


def login(client: httpx.Client, base: str, token: str) -> None:
    """Log in through the login form, as a browser does (its CSRF field and nonce cookie, then the session cookie)."""
    form = client.get(f"{base}/login")
    form.raise_for_status()
    match = re.search(r'name="csrf"\s+value="([^"]+)"', form.text) or re.search(
        r'value="([^"]+)"\s+name="csrf"', form.text
    )
    if match is None:
        raise RuntimeError("the login page has no csrf field")
    answer = client.post(f"{base}/login", data={"token": token, "csrf": match.group(1), "next": f"{base}/"})
    if answer.status_code != 303 or "dg_console" not in client.cookies:
        raise RuntimeError(f"login failed: HTTP {answer.status_code}")


def first_case(data_dir: Path, cluster_id: str) -> str | None:
    """The case of the big campaign (for the case page), if it has one."""
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'state.db'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT case_id FROM cases WHERE subject_id = ? ORDER BY opened_at LIMIT 1", (cluster_id,)
        ).fetchone()
        return str(row[0]) if row else None
    finally:
        conn.close()


def one_check(data_dir: Path) -> str | None:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'state.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT check_id FROM checks ORDER BY at DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None
    finally:
        conn.close()


def one_event(data_dir: Path, account_id: str) -> str | None:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'events.db'}?mode=ro", uri=True)
    try:
        query = "SELECT event_id FROM events WHERE account_id = ? ORDER BY ts_us DESC LIMIT 1"
        row = conn.execute(query, (account_id,)).fetchone()
        return str(row[0]) if row else None
    finally:
        conn.close()


def targets(data_dir: Path, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, path under the console) of every page and JSON endpoint timed."""
    from distillguard.console.read.accounts import SORTS

    picks = manifest["picks"]
    heavy = picks["heavy_account"]["account_id"]
    typical = picks["typical_account"]["account_id"]
    out = [("overview", "/")]
    out += [("accounts", "/accounts")]
    for sort in SORTS:
        out += [(f"accounts sort={sort} desc", f"/accounts?sort={sort}&dir=desc")]
        out += [(f"accounts sort={sort} asc", f"/accounts?sort={sort}&dir=asc")]
    out += [
        ("accounts verdict=block", "/accounts?verdict=block"),
        ("accounts verdict=watch sort=calls", "/accounts?verdict=watch&sort=calls&dir=desc"),
        ("accounts tier=enterprise", "/accounts?tier=enterprise"),
        ("accounts min_risk=0.5", "/accounts?min_risk=0.5"),
        ("accounts tier=free sort=last_seen", "/accounts?tier=free&sort=last_seen&dir=desc"),
        ("accounts search", f"/accounts?q={quote(typical[:9])}"),
        ("accounts page 50", "/accounts?offset=2500"),
        ("api/accounts (live update)", "/api/accounts"),
        ("api/accounts sort=last_seen", "/api/accounts?sort=last_seen&dir=desc"),
        ("api/accounts verdict=block", "/api/accounts?verdict=block"),
        (f"account heavy ({picks['heavy_account']['events']:,} calls)", f"/accounts/{quote(heavy)}"),
        (f"account typical ({picks['typical_account']['events']:,} calls)", f"/accounts/{quote(typical)}"),
    ]
    flagged = picks.get("flagged_account")
    if flagged:
        out += [(f"account flagged ({flagged['events']:,} calls)", f"/accounts/{quote(flagged['account_id'])}")]
    event = one_event(data_dir, heavy)
    if event:
        out += [("event", f"/events/{event}")]
    big = picks["big_campaign"]
    out += [
        ("campaigns", "/campaigns"),
        (f"campaign big ({big['members']} members, {big['links']} links)", f"/campaigns/{big['cluster_id']}"),
        ("review queue", "/review"),
    ]
    case = first_case(data_dir, big["cluster_id"])
    if case:
        out += [("review case (big campaign)", f"/review/{case}")]
    out += [("intel", "/intel"), ("watermark checks", "/watermark")]
    check = one_check(data_dir)
    if check:
        out += [("watermark check", f"/watermark/{check}")]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_page(client: httpx.Client, url: str, warmup: int, requests: int) -> dict[str, Any]:
    def once() -> tuple[float, int, int]:
        t0 = time.perf_counter()
        answer = client.get(url)
        body = answer.content
        return (time.perf_counter() - t0) * 1000, answer.status_code, len(body)

    first_ms, status, size = once()
    if status != 200:
        raise RuntimeError(f"{url} answered HTTP {status}")
    for _ in range(warmup):
        once()
    timed = [once()[0] for _ in range(requests)]
    return {
        "first_ms": round(first_ms, 1),
        "p50_ms": round(percentile(timed, 0.5), 1),
        "p95_ms": round(percentile(timed, 0.95), 1),
        "max_ms": round(max(timed), 1),
        "kb": round(size / 1024, 1),
    }


def run(data_dir: Path, manifest: dict[str, Any], warmup: int, requests: int) -> dict[str, dict[str, Any]]:
    port = procs.free_port()
    argv = [str(ROOT / ".venv" / "bin" / "distillguard"), "console", "--data-dir", str(data_dir)]
    argv += ["--config", manifest["config"], "--port", str(port)]
    run_dir = RUN / f"console-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    token_id, token = admin_token(data_dir, Path(manifest["config"]))
    server = procs.start("console", procs.pinned(procs.TARGET_CORE, argv), run_dir / "console.log")
    os.sched_setaffinity(0, {procs.LOAD_CORE})
    try:
        base = f"http://{procs.LOOPBACK}:{port}/console"
        ready = procs.wait_http_ok(server, f"{base}/login", STARTUP_TIMEOUT_S)
        log(f"console ready in {ready:.1f} s (log: {run_dir / 'console.log'})")
        results: dict[str, dict[str, Any]] = {}
        with httpx.Client(timeout=120.0) as client:
            login(client, base, token)
            for name, path in targets(data_dir, manifest):
                results[name] = {"path": path, **time_page(client, base + path, warmup, requests)}
                r = results[name]
                log(f"{name}: first {r['first_ms']} ms, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['kb']} KB")
        return results
    finally:
        server.stop()
        revoke(data_dir, Path(manifest["config"]), token_id)


def print_table(pages: dict[str, dict[str, Any]], console: Console) -> None:
    table = Table(title=f"console pages (target: <= {TARGET_MS:.0f} ms)")
    for heading in ("page", "first ms", "p50 ms", "p95 ms", "max ms", "KB", ""):
        table.add_column(heading, justify="left" if heading == "page" else "right", no_wrap=heading == "page")
    for name, r in pages.items():
        ok = r["p95_ms"] <= TARGET_MS
        table.add_row(
            name, f"{r['first_ms']:.1f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['max_ms']:.1f}",
            f"{r['kb']:.1f}", "ok" if ok else "[red]over[/red]",
        )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = console_data.Scale()
    parser.add_argument("--accounts", type=int, default=defaults.accounts)
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--data", type=Path, default=RUN / "console-data", help="the data dir (built if missing)")
    parser.add_argument("--rebuild", action="store_true", help="build the data dir again")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the data dir, time nothing")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="discarded requests per page after the first")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "console.json")
    args = parser.parse_args()
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")
    scale = console_data.Scale(accounts=args.accounts, events=args.events, seed=args.seed)
    data_dir = args.data.resolve()
    manifest = ensure_data(data_dir, scale, args.rebuild)
    if args.build_only:
        print(json.dumps({k: manifest[k] for k in ("build_s", "stages_s", "disk_bytes", "peak_rss_mb")}, indent=2))
        return
    age_h = (datetime.now(UTC) - datetime.fromisoformat(manifest["end"].replace("Z", "+00:00"))).total_seconds() / 3600
    if age_h > 6:
        log(f"the data's week ended {age_h:.0f} h ago: the overview's hour and day ranges see less traffic (--rebuild)")
    pages = run(data_dir, manifest, args.warmup, args.requests)
    over = [name for name, r in pages.items() if r["p95_ms"] > TARGET_MS]
    results = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "target_ms": TARGET_MS,
        "data_age_h": round(age_h, 2),
        "load_average": os.getloadavg(),
        "requests": args.requests,
        "warmup": args.warmup,
        "data": {k: v for k, v in manifest.items() if k not in ("config",)},
        "pages": pages,
        "over_target": over,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console = Console(width=150)
    print_table(pages, console)
    console.print(f"{len(pages) - len(over)} of {len(pages)} pages within {TARGET_MS:.0f} ms (p95); saved {args.out}")


if __name__ == "__main__":
    main()
