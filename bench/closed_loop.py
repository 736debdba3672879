"""Closed-loop throughput with wrk: N connections, each sending its next request as soon as the last one answered."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procs import LOAD_CORE, pinned

_MARKER = "WRK_RESULT "

# wrk calls done() once at the end; latency:percentile() is in microseconds. status = non-2xx/3xx answers.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
    .. '"non_2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    "%(marker)s", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    """A Lua long-bracket string literal holding ``text`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def write_script(path: Path, body: bytes, headers: Mapping[str, str]) -> Path:
    """A wrk Lua script POSTing ``body`` with ``headers`` and printing a JSON summary at the end."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    all_headers = {"Content-Type": "application/json", **headers}
    lines += [f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}" for name, value in all_headers.items()]
    path.write_text("\n".join(lines) + "\n" + _DONE.replace("%(marker)s", _MARKER))
    return path


def run_wrk(url: str, script: Path, connections: int, duration_s: int, timeout_s: int = 5) -> dict[str, Any]:
    """One wrk run on the load core; returns its summary (requests/s, latency percentiles in ms, errors)."""
    argv = pinned(
        LOAD_CORE,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            url,
        ],
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith(_MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    raw = json.loads(line[len(_MARKER) :])
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "connections": connections,
        "duration_s": round(seconds, 3),
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "latency_ms": {
            "p50": raw["p50_us"] / 1000,
            "p90": raw["p90_us"] / 1000,
            "p99": raw["p99_us"] / 1000,
            "p99.9": raw["p999_us"] / 1000,
            "max": raw["max_us"] / 1000,
            "mean": raw["mean_us"] / 1000,
        },
        "non_2xx": raw["non_2xx"],
        "socket_errors": socket_errors,
        "error_kinds": {k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts") if raw[k]},
        "valid": raw["non_2xx"] == 0 and socket_errors == 0 and raw["requests"] > 0,
    }
