"""Start real `distillguard` processes on loopback for end-to-end tests, and stop them reliably."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent / "distillguard"


# The kernel hands out source ports for outgoing connections from this range; the first one below it is the end of
# the pool free_port draws from.
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
POOL_START = 10_000


def _port_pool() -> range:
    """The ports this test process may hand out: below the ephemeral range, so no outgoing connection (any client on
    the machine) can take one between free_port's check and the server's bind; and under pytest-xdist a slice of its
    own per worker, so two workers never hand out the same port."""
    try:
        end = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        end = 32_768  # Linux's default
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = max(end - POOL_START, 0) // workers
    return range(POOL_START + worker * size, POOL_START + (worker + 1) * size)


def free_port() -> int:
    """A loopback port no server is bound to, for a server a test starts. Random within the pool, so that test runs
    side by side (other checkouts, other users) rarely try the same one; the bind proves it free."""
    pool = _port_pool()
    for port in random.sample(pool, min(len(pool), 1000)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # no pool (an odd ephemeral range), or all of it taken: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0, log: Path | None = None) -> None:
    """Wait until ``url`` answers; a process that exits first, or never answers, fails with the end of its ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered{_tail(log)}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s{_tail(log)}")


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    return "; its log ends:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def cli(*args: str, data_dir: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN), *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


def invoke(*args: str, data_dir: Path | None = None) -> str:
    """Run a `distillguard` command in this process and return what it printed: the command's own code, without
    the second of interpreter start-up a process costs (end-to-end tests issue hundreds of keys). For the store
    commands a test uses to set up a deployment or poll it; :func:`cli` runs the real executable."""
    from typer.testing import CliRunner

    from distillguard.cli import app

    argv = [*args, *(["--data-dir", str(data_dir)] if data_dir is not None else [])]
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 0, f"distillguard {' '.join(argv)} exited with {result.exit_code}: {result.output}"
    return result.stdout


def create_key(data_dir: Path, account: str, *extra: str) -> str:
    return str(json.loads(invoke("keys", "create", "--account", account, "--json", *extra, data_dir=data_dir))["key"])


def toml_value(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and arrays are valid TOML values


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every call answered so far is in the event log: no request in flight, nothing queued."""
        deadline = time.monotonic() + timeout
        while True:
            metrics = httpx.get(f"{self.url}/metrics", timeout=5).text
            idle = {"distillguard_requests_in_flight 0.0", "distillguard_event_queue_depth 0.0"}
            if idle <= set(metrics.splitlines()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway did not settle within {timeout} s")
            time.sleep(0.02)

    def events(self) -> list[dict[str, Any]]:
        """The event log as `distillguard events export` writes it, once every call answered so far is in it."""
        if self.proc.poll() is None:
            self.settle()
        out = self.data_dir / "export.jsonl"
        invoke("events", "export", "--out", str(out), data_dir=self.data_dir)
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_config(path: Path, upstream: str, extra: str = "", upstream_extra: str = "", server_extra: str = "") -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
graceful_shutdown_s = 10
{server_extra}

[[upstreams]]
name = "primary"
base_url = {toml_value(upstream)}
{upstream_extra}

{extra}
"""
    )
    return path


@contextmanager
def running_gateway(
    tmp: Path,
    upstream: str,
    config_extra: str = "",
    upstream_extra: str = "",
    accounts: dict[str, list[str]] | None = None,
    server_extra: str = "",
) -> Iterator[Gateway]:
    """A `distillguard serve` process with a config file, keys for ``accounts`` ({account: [cli flags]})."""
    data_dir = tmp / "data"
    config = write_config(tmp / "distillguard.toml", upstream, config_extra, upstream_extra, server_extra)
    keys = {}
    for account, flags in (accounts or {"tester": []}).items():
        keys[account] = create_key(data_dir, account, "--config", str(config), *flags)
    port = free_port()
    log_path = tmp / "gateway.log"
    env = {**os.environ, "DISTILLGUARD_LOGGING__LEVEL": "INFO"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--config", str(config), "--data-dir", str(data_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    gateway = Gateway(proc, port, data_dir, log_path, keys)
    try:
        wait_ready(f"{gateway.url}/healthz", proc, log=log_path)
        yield gateway
    finally:
        gateway.stop()


@dataclass
class Mock:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/mock/stats", timeout=5).json())


@contextmanager
def running_mock(*args: str) -> Iterator[Mock]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "mock-upstream", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", proc)
        yield Mock(proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
