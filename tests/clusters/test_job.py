"""The clustering job's machinery: its lock, its worker process (a failed run or a dead process is counted and the
next run works), and no job where the events are not in events.db."""

from __future__ import annotations

from pathlib import Path

from distillguard.clusters.job import LOCK_FILE, ClusteringJob, RunnerLock
from distillguard.config import EventsConfig, Settings
from distillguard.events.sqlite import EVENTS_DB
from distillguard.gateway.app import Gateway


def test_the_runner_lock_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    # Two open file descriptions of one file are independent flock holders, as two processes are.
    first, second = RunnerLock(tmp_path / LOCK_FILE), RunnerLock(tmp_path / LOCK_FILE)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    first.release()
    assert second.acquire()
    assert (tmp_path / LOCK_FILE).read_text().strip().isdigit()  # the holder's pid
    second.release()


async def test_failed_runs_and_a_dead_worker_are_counted_and_the_next_run_works(tmp_path: Path) -> None:
    job = ClusteringJob(Settings(data_dir=tmp_path))
    (tmp_path / EVENTS_DB).mkdir()  # not a database: the run fails in the worker
    try:
        assert await job.run_once() is None
        assert job.failures == 1 and job.runs == 0
        (tmp_path / EVENTS_DB).rmdir()  # no event log yet: a run with nothing to do
        summary = await job.run_once()
        assert summary is not None and summary["campaigns"] == 0 and job.runs == 1
        process = job.worker._proc
        assert process is not None
        process.kill()
        process.join()
        assert await job.run_once() is not None and job.runs == 2 and job.failures == 1
    finally:
        await job.stop()


def test_no_job_when_events_go_to_a_redis_stream(tmp_path: Path) -> None:
    events = EventsConfig(sink="redis", stream_url="redis://127.0.0.1:1/0")
    assert Gateway(Settings(data_dir=tmp_path, events=events)).clustering is None
    assert Gateway(Settings(data_dir=tmp_path / "sqlite")).clustering is not None
