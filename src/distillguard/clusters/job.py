"""The periodic campaign clustering of ``serve``: one run (clusters/run.py) every ``[clusters] interval_s``.

Runs happen in a worker process of their own (spawned at the first run, kept between runs, at a lower CPU
priority), so neither the gateway's event loop nor its GIL is held by the clustering, and its libraries (igraph,
Leiden, MinHash) never load into the gateway. Only one process per data directory runs the job: the one holding an
exclusive lock on ``data_dir/clusters.lock`` (``serve --workers N`` starts N gateways on one data directory; the
others try again every interval, so one takes over if the runner stops). The lock is on the data directory
because that is where the events the job reads are: ``events.db``.

A run that fails, or a worker process that dies, is logged and counted; the next interval tries again with a new
process if needed. A run still going when the interval comes round is left to finish (runs never overlap).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillguard.background import Background
from distillguard.config import Settings

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)

LOCK_FILE = "clusters.lock"


class RunFailed(Exception):
    """A clustering run raised, or its worker process died; the message says what happened."""


class RunnerLock:
    """An exclusive, non-blocking ``flock`` on a file: held by one process at a time, released when it exits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; whether this process holds it now."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # For whoever wonders which process runs the job.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _serve(conn: Connection) -> None:
    """The worker process: run what it is sent, send back its summary (plain JSON: unpickling a RunSummary would load
    the clustering's libraries into the gateway) or the failure, until the pipe closes."""
    from distillguard.clusters.run import run_once
    from distillguard.logs import configure_logging

    configured = False
    while True:
        try:
            settings, now_us = conn.recv()
        except EOFError:
            return  # the gateway stopped (or died)
        if not configured:
            configure_logging(settings.logging.level, settings.logging.format)
            # Batch work: the gateway's calls come first ([clusters] niceness).
            with contextlib.suppress(OSError):  # not permitted here: run at the gateway's priority
                os.nice(settings.clusters.niceness)
            configured = True
        try:
            result: dict[str, Any] | str = run_once(settings, now_us).to_json()
        except Exception:  # reported to the gateway, which logs and counts it; the worker keeps serving
            result = traceback.format_exc()
        conn.send(result)


class Worker:
    """The clustering job's process, and the pipe to it."""

    def __init__(self) -> None:
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(theirs,), name="distillguard-clustering", daemon=True)
        proc.start()
        theirs.close()
        self._proc, self._conn = proc, ours
        return ours

    def ready(self) -> Connection:
        """The pipe to a live process, starting one (and its imports, a few seconds) if there is none."""
        if self._conn is None or self._proc is None or not self._proc.is_alive():
            self.stop()
            return self._start()
        return self._conn

    async def run(self, settings: Settings, now_us: int) -> dict[str, Any]:
        """One run in the process (started first if need be); its summary (``RunSummary.to_json()``)."""
        conn = self.ready()
        conn.send((settings, now_us))
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(conn.fileno(), ready)
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
        try:
            result: dict[str, Any] | str = conn.recv()
        except (EOFError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            self.stop()
            raise RunFailed(f"the clustering process died (exit code {code})") from None
        if isinstance(result, str):
            raise RunFailed(result)
        return result

    def stop(self) -> None:
        """End the process (a run in progress is abandoned: the next one starts over)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
                if self._proc.is_alive():
                    self._proc.kill()
                    self._proc.join()
            self._proc = None


class ClusteringJob:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval_s = settings.clusters.interval_s
        self.lock = RunnerLock(settings.data_dir / LOCK_FILE)
        self.worker = Worker()
        self._waiting_logged = False
        # Runs one at a time: the periodic one and any asked for (the demo's last pass) share the worker.
        self._one_at_a_time = asyncio.Lock()
        self._task = Background("distillguard-clustering", self._loop)
        # Read by the gateway's /metrics.
        self.runs = 0
        self.failures = 0
        self.campaigns = 0
        self.cases_opened = 0
        self.last_duration_s = 0.0

    @property
    def runner(self) -> bool:
        return self.lock.held

    def _take_lock(self) -> bool:
        if self.lock.held:
            return True
        if self.lock.acquire():
            log.info("this process runs the campaign clustering job", extra={"interval_s": self.interval_s})
            return True
        if not self._waiting_logged:
            log.info("another process runs the campaign clustering job of this data directory; standing by")
            self._waiting_logged = True
        return False

    async def run_once(self) -> dict[str, Any] | None:
        """One run now (in the worker process); its summary, or None when it failed (logged and counted)."""
        async with self._one_at_a_time:
            return await self._run()

    async def _run(self) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            summary = await self.worker.run(self.settings, time.time_ns() // 1000)
        except RunFailed as exc:
            self.failures += 1
            log.error("campaign clustering run failed", extra={"error": str(exc)[-4000:]})
            return None
        except OSError:  # the pipe broke under us (the process died between runs): a new one next time
            self.failures += 1
            self.worker.stop()
            log.exception("campaign clustering run failed")
            return None
        finally:
            self.last_duration_s = time.monotonic() - started
        self.runs += 1
        self.campaigns = int(summary["campaigns"])
        self.cases_opened += len(summary["cases_opened"])
        log.info("campaign clustering run", extra=summary)
        return summary

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self._take_lock():
                await self.run_once()

    def start(self) -> None:
        """Run every interval from now on, the first run one interval from now (its worker process starts then)."""
        self._take_lock()
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        self.worker.stop()
        self.lock.release()
