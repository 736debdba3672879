"""Process plumbing for the benchmark: free ports, pinned process groups, readiness polling, RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
TARGET_CORE = 0
LOAD_CORE = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def pinned(core: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run under ``taskset -c core`` (children inherit the affinity)."""
    return ["taskset", "-c", str(core), *argv]


class StartupError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


@dataclass
class Managed:
    """A process started in its own process group, with its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    exit_code: int | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM the whole group, wait ``grace_s``, then SIGKILL what is left. Returns the exit code."""
        if self.alive():
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Whatever the leader left behind in its group (forked workers) goes too.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.exit_code = self.proc.returncode
        return self.exit_code


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> Managed:
    """Start ``argv`` in a new session (its own process group) so that it can be killed as a whole."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return Managed(name, proc, log_path)


def wait_http_ok(managed: Managed, url: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> float:
    """Poll ``url`` until it answers 2xx; returns the seconds it took. Raises StartupError on exit or timeout."""
    started = time.monotonic()
    deadline = started + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not managed.alive():
            raise StartupError(
                f"{managed.name} exited with code {managed.proc.returncode} before it was ready:\n{managed.log_tail()}"
            )
        request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - loopback http only
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:  # noqa: S310
                if 200 <= resp.status < 300:
                    return time.monotonic() - started
                last_error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise StartupError(f"{managed.name} not ready after {timeout_s:.0f}s ({last_error}):\n{managed.log_tail()}")


def post_json(
    url: str, body: bytes, headers: Mapping[str, str], timeout_s: float = 30.0
) -> tuple[int, bytes, dict[str, str]]:
    """One POST; returns (status, body, lower-cased headers), also for HTTP errors."""
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        url, data=body, headers={"content-type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            return int(resp.status), resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(), {k.lower(): v for k, v in exc.headers.items()}


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, in bytes (0 if it is gone or is a kernel thread)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> tuple[int, int]:
    """Summed VmRSS of ``pid`` and its descendants, and how many processes that is."""
    pids = process_tree(pid)
    return sum(rss_bytes(p) for p in pids), len(pids)


def _cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU line of /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            values = [int(v) for v in fields]
            idle = values[3] + values[4]  # idle + iowait
            out[name] = (sum(values) - idle, sum(values))
    return out


def cpu_busy_pct(seconds: float) -> dict[str, float]:
    """How busy each CPU is over ``seconds`` (to tell whether something else is running during the benchmark)."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    busy = {}
    for name, (b1, t1) in after.items():
        b0, t0 = before.get(name, (b1, t1))
        busy[name] = round(100 * (b1 - b0) / (t1 - t0), 1) if t1 > t0 else 0.0
    return busy
