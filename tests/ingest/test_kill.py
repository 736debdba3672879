"""kill -9 of an `ingest` process mid-load, twice, then a restart: the archive holds every event id exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis

from distillguard.ingest.archive import part_files
from tests.ingest.test_worker import STREAM, archived_ids, preload
from tests.support.servers import Redis


def start_worker(server: Redis, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "distillguard.ingest", "--stream-url", server.url, "--out", str(out),
         "--consumer", "w1", "--batch", "500", "--flush-s", "0.2", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill_after_files(proc: subprocess.Popen[bytes], out: Path, files: int) -> None:
    deadline = time.monotonic() + 60
    while len(part_files(out)) < files:
        assert proc.poll() is None, "the worker exited before it was killed"
        assert time.monotonic() < deadline, "the worker archived nothing"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_kill_9_mid_load_then_restart_archives_every_event_exactly_once(redis_server: Redis, tmp_path: Path) -> None:
    # Events without signals: the worker computes them, which keeps it busy long enough to be killed mid-load.
    ids = preload(redis_server, 20_000)
    out = tmp_path / "archive"
    kill_after_files(start_worker(redis_server, out), out, 3)
    kill_after_files(start_worker(redis_server, out), out, len(part_files(out)) + 3)
    client = redis.Redis.from_url(redis_server.url)
    group = client.xinfo_groups(STREAM)[0]
    assert group["lag"] + group["pending"] > 0, "the worker had finished before it was killed"
    finished = start_worker(redis_server, out, "--until-idle")
    assert finished.wait(120) == 0
    assert archived_ids(out) == Counter(ids)
    assert client.xpending(STREAM, "ingest")["pending"] == 0
