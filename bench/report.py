"""Turn the benchmark's result document into checks against the goals, a rich table and a markdown table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_NAMES = ("direct", "distillguard", "distillguard+detect", "litellm")

# The goals of the gateway on one core (the issue), and what the issue reported for LiteLLM 1.x on this machine.
GOAL_RPS = 3000.0
GOAL_ADDED_P50_MS = 0.5
GOAL_ADDED_P99_MS = 2.0
GOAL_RSS_MB = 150.0
ISSUE_LITELLM = {
    "throughput": "60-126 req/s at 1-8 connections",
    "added_p50": "10-16 ms",
    "open_loop": "most calls timed out at 300 req/s offered",
}
# Above this share of failed calls an open-loop row's percentiles (over the calls that succeeded) mean little.
MAX_FAILED_SHARE = 0.01


@dataclass(frozen=True)
class Check:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: could not be measured


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def open_loop_failed(open_loop: dict[str, Any]) -> int:
    return int(open_loop["timeouts"] + open_loop["errors"] + open_loop["non_2xx"])


def added_latency(target: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """Target minus direct, from the same run: open loop p50/p99 and the closed-loop p50 at one connection.

    The open-loop baseline is the direct run made just before the target's own open-loop run
    (``open_loop_baseline``), so that slow drift of the machine between phases does not end up in the difference;
    without one, the direct target's own open-loop run is used.
    """
    out: dict[str, Any] = {"open_loop_p50": None, "open_loop_p99": None, "closed_c1_p50": None, "note": None}
    if not (target.get("available") and direct.get("available")):
        return out
    mine, base = target.get("open_loop"), target.get("open_loop_baseline") or direct.get("open_loop")
    out["open_loop_baseline"] = "adjacent direct run" if target.get("open_loop_baseline") else "direct target's run"
    if mine and base:
        failed = open_loop_failed(mine) / max(1, mine["sent"])
        if failed > MAX_FAILED_SHARE:
            out["note"] = f"{failed:.0%} of the open-loop calls failed; added open-loop latency not computed"
        elif mine["latency_ms"]["p50"] is not None and base["latency_ms"]["p50"] is not None:
            out["open_loop_p50"] = mine["latency_ms"]["p50"] - base["latency_ms"]["p50"]
            out["open_loop_p99"] = mine["latency_ms"]["p99"] - base["latency_ms"]["p99"]
    c1 = _closed_row(target, 1)
    d1 = _closed_row(direct, 1)
    if c1 and d1 and c1["valid"] and d1["valid"]:
        out["closed_c1_p50"] = c1["latency_ms"]["p50"] - d1["latency_ms"]["p50"]
    return out


def _closed_row(target: dict[str, Any], connections: int) -> dict[str, Any] | None:
    return next((r for r in target.get("closed_loop", []) if r["connections"] == connections), None)


def peak_rps(target: dict[str, Any]) -> float | None:
    rows = [r["rps"] for r in target.get("closed_loop", []) if r["valid"]]
    return max(rows) if rows else None


def checks(results: dict[str, Any]) -> list[Check]:
    dg = results["targets"].get("distillguard", {})
    if not dg.get("available"):
        reason = dg.get("reason", "not run")
        return [Check("distillguard", "available", f"unavailable: {reason}", None)]
    out: list[Check] = []
    rows = dg.get("closed_loop", [])
    bad = [r for r in rows if not r["valid"]]
    out.append(
        Check(
            "closed loop: every call answered 2xx",
            "0 non-2xx, 0 socket errors",
            "ok" if not bad else "; ".join(f"c={r['connections']}: {r['non_2xx']} non-2xx" for r in bad),
            not bad,
        )
    )
    peak = peak_rps(dg)
    out.append(
        Check(
            "throughput on one core (best of 1/8/64 conns)",
            f">= {GOAL_RPS:,.0f} req/s",
            _rps(peak),
            _ge(peak, GOAL_RPS),
        )
    )
    ol = dg.get("open_loop")
    if ol:
        failed = open_loop_failed(ol)
        out.append(
            Check(
                f"open loop {ol['offered_rps']:.0f} req/s: no failed call",
                "0 timeouts/errors/non-2xx",
                f"{failed} failed of {ol['sent']}",
                failed == 0,
            )
        )
    added = dg.get("added_latency_ms") or {}
    p50, p99 = added.get("open_loop_p50"), added.get("open_loop_p99")
    out.append(
        Check("added median latency at 300 req/s", f"<= {GOAL_ADDED_P50_MS} ms", _ms(p50), _le(p50, GOAL_ADDED_P50_MS))
    )
    out.append(
        Check("added p99 latency at 300 req/s", f"<= {GOAL_ADDED_P99_MS} ms", _ms(p99), _le(p99, GOAL_ADDED_P99_MS))
    )
    rss = dg.get("rss_mb")
    out.append(Check("resident memory after load", f"<= {GOAL_RSS_MB:.0f} MB", _mb(rss), _le(rss, GOAL_RSS_MB)))
    log = dg.get("event_log")
    if log:
        out.append(
            Check(
                "event log holds every answered call",
                ">= calls answered",
                f"{log['events']:,} events for {log['calls_answered']:,} calls answered",
                log["events"] >= log["calls_answered"],
            )
        )
    return out


def _rps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} req/s"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f} ms"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def _ge(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def _le(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


# tables ---------------------------------------------------------------------------------------------
def closed_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["target", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"]
    rows: list[list[str]] = []
    for name in TARGET_NAMES:
        target = results["targets"].get(name)
        if target is None:
            continue
        if not target.get("available"):
            rows.append([name, "-", "unavailable", "", "", "", ""])
            continue
        for r in target.get("closed_loop", []):
            rows.append(
                [
                    name,
                    str(r["connections"]),
                    f"{r['rps']:,.0f}",
                    _fmt(r["latency_ms"]["p50"]),
                    _fmt(r["latency_ms"]["p99"]),
                    str(r["non_2xx"]),
                    str(r["socket_errors"]),
                ]
            )
    return header, rows


def open_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rate = results["plan"]["open_rate"]
    header = [
        "target",
        f"ok req/s (of {rate:.0f})",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed (timeouts/errors/non-2xx)",
        "added p50 ms",
        "added p99 ms",
        "added p50 @1 conn",
        "RSS MB",
    ]
    rows: list[list[str]] = []
    for name in TARGET_NAMES:
        target = results["targets"].get(name)
        if target is None:
            continue
        if not target.get("available"):
            rows.append([name, "unavailable", *[""] * (len(header) - 2)])
            continue
        ol = target.get("open_loop")
        added = target.get("added_latency_ms") or {}
        if ol is None:
            rows.append([name, "not measured", *[""] * (len(header) - 2)])
            continue
        lat = ol["latency_ms"]
        failed = f"{ol['timeouts']}/{ol['errors']}/{ol['non_2xx']}"
        is_direct = name == "direct"
        rows.append(
            [
                name,
                f"{ol['ok_rps']:,.0f}",
                _fmt(lat["p50"]),
                _fmt(lat["p99"]),
                _fmt(lat["max"]),
                failed,
                "-" if is_direct else _signed(added.get("open_loop_p50")),
                "-" if is_direct else _signed(added.get("open_loop_p99")),
                "-" if is_direct else _signed(added.get("closed_c1_p50")),
                _fmt(target.get("rss_mb"), 1),
            ]
        )
    return header, rows


def check_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["distillguard check", "goal", "measured", "result"]
    rows = [[c.name, c.goal, c.measured, _verdict(c.passed)] for c in checks(results)]
    return header, rows


def litellm_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    target = results["targets"].get("litellm", {})
    header = ["LiteLLM", "issue reported", "this run"]
    if not target.get("available"):
        measured = f"unavailable: {target.get('reason', 'not run')}"
        return header, [["version", "1.x", measured]]
    rps = [f"{r['rps']:,.0f}" for r in target.get("closed_loop", []) if r["connections"] in (1, 8)]
    added = target.get("added_latency_ms") or {}
    ol = target.get("open_loop")
    open_text = "n/a"
    if ol:
        failed = f"{open_loop_failed(ol)} of {ol['sent']} calls failed ({ol['timeouts']} timeouts)"
        open_text = f"{failed}, {ol['ok_rps']:,.0f} ok req/s"
    return header, [
        ["version", "1.x", target.get("version", "?")],
        ["throughput at 1-8 conns", ISSUE_LITELLM["throughput"], " / ".join(rps) + " req/s"],
        ["added median latency", ISSUE_LITELLM["added_p50"], f"{_signed(added.get('closed_c1_p50'))} ms at 1 conn"],
        [f"open loop {results['plan']['open_rate']:.0f} req/s", ISSUE_LITELLM["open_loop"], open_text],
    ]


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "MISS", None: "n/a"}[passed]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    right = {
        i
        for i, h in enumerate(header)
        if i > 0 and h not in ("goal", "measured", "result", "issue reported", "this run")
    }
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        style = "red" if any(cell == "MISS" or cell == "unavailable" for cell in row) else None
        table.add_row(*row, style=style)
    return table


def print_report(results: dict[str, Any], console: Console) -> str:
    """Print the rich tables and return the markdown version of the same tables."""
    sections = [
        ("Closed loop (wrk, one request in flight per connection)", closed_table(results)),
        (f"Open loop ({results['plan']['open_rate']:.0f} req/s offered) and memory", open_table(results)),
        ("distillguard against its goals", check_table(results)),
        ("LiteLLM against what the issue reported", litellm_table(results)),
    ]
    for title, (header, rows) in sections:
        console.print(rich_table(title, header, rows))
    return "\n\n".join(f"**{title}**\n\n{markdown(header, rows)}" for title, (header, rows) in sections)
