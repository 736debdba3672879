"""The ingest worker: reads the event stream in a consumer group, enriches, archives as Parquet, then acknowledges.

Delivery is at least once and the archive is idempotent, so the archive holds every event exactly once:

1. **Ack after commit.** A batch is archived (files synced and renamed into place) before its entries are
   acknowledged (XACK). A crash anywhere leaves the batch's entries pending in the group (its PEL): nothing the
   stream delivered is lost, it is delivered again.
2. **Fresh entries are new.** An entry read with ``>`` was never delivered to anyone, so no file can hold it; the
   sink appends each event once (its batches carry an idempotency marker, events/stream.py), so its event id is
   new too. Fresh batches are written without looking at the archive (the fast path).
3. **Redelivered entries are checked.** Entries read again (this consumer's PEL on start, ``XREADGROUP`` id ``0``;
   or claimed from a worker idle for ``claim_idle_s``, ``XAUTOCLAIM``) may have been archived by the crashed
   attempt. An archived entry sits in a file of its own hour partition whose stream-id range (in the file name)
   contains its id, so the worker reads the event ids of just those files and drops what is already there.
4. **Same entries, same file.** A file's name and content are a function of its entries (rows sorted by stream
   id, enrichment deterministic), so two workers committing the same claimed batch write one file twice, and the
   rename makes that harmless.
5. **Ownership before rename.** Right before renaming, a worker checks that the group still lists every entry of
   its batch as its own (XPENDING); if another worker claimed some (this one stalled longer than ``claim_idle_s``),
   it discards its files and re-reads what it still owns. A duplicate would need the other worker's claim *and*
   its archive check to fall in the microseconds between this check and the rename.

With ``rollups`` (the state store's traffic rollups, ingest/rollups.py) a batch's files are counted after they are
published and before the acknowledgement, each file once: redelivered entries that turn out archived have their
files counted then if a crash came between publishing and counting.

Within a batch, entries with the same event id are kept once. What can be lost: entries trimmed from the stream by
its MAXLEN before a worker read them (counted as ``trimmed``), which is why the sink's ``stream_maxlen`` must cover
the ingest lag you accept.

Consumer names must be unique among running workers and stable across restarts of one worker (the hostname by
default, e.g. a StatefulSet pod name): a restarted worker finishes its own PEL first; the PEL of a worker that
never returns is claimed by the others after ``claim_idle_s``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from sqlalchemy.exc import OperationalError

from distillguard.events.rollups import HOUR_US
from distillguard.events.stream import EVENT_FIELD, read_stream_stats
from distillguard.ingest.archive import (
    Archive,
    Partition,
    Record,
    StagedFile,
    UnfitEvents,
    conform,
    partition_of,
    stream_id_key,
)
from distillguard.ingest.enrich import enrich
from distillguard.ingest.metrics import IngestMetrics
from distillguard.ingest.rollups import StoreRollups
from distillguard.ingest.verdicts import Scoring
from distillguard.timefmt import epoch_us, parse_rfc3339

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
Rejected = tuple[str, bytes, str]  # stream id, the entry's event field, why it is not archived
STATS_EVERY_S = 5.0
REDIS_RETRY_S = 1.0
# How often the rollups' record of counted files is pruned.
PRUNE_EVERY_S = 600.0


@dataclass
class IngestOptions:
    stream_url: str
    out: Path | None
    stream: str = "distillguard:events"
    group: str = "ingest"
    consumer: str = field(default_factory=socket.gethostname)
    batch: int = 5000
    flush_s: float = 2.0
    # Pending entries idle this long belong to a worker presumed dead: another claims them. None: never claim.
    claim_idle_s: float | None = 300.0


@dataclass
class IngestStats:
    archived: int = 0
    duplicates: int = 0
    trimmed: int = 0
    rejected: int = 0
    signals_computed: int = 0
    batches: int = 0
    files: int = 0
    rollup_files: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class OwnershipLost(Exception):
    """Another worker claimed entries of the batch being committed."""


class IngestWorker:
    def __init__(
        self,
        options: IngestOptions,
        client: redis.Redis | None = None,
        scoring: Scoring | None = None,
        metrics: IngestMetrics | None = None,
        rollups: StoreRollups | None = None,
    ) -> None:
        from distillguard.events.stream import connect

        if options.out is None and scoring is None:
            raise ValueError("nothing to do: give an archive directory (--out) or a verdict output (--verdicts)")
        if rollups is not None and options.out is None:
            raise ValueError("the traffic rollups count archived events: give an archive directory (--out)")
        self.options = options
        self.client = client if client is not None else connect(options.stream_url)
        self.archive = Archive(options.out, options.consumer) if options.out is not None else None
        self.scoring = scoring
        self.rollups = rollups
        self.metrics = metrics or IngestMetrics()
        self.stats = IngestStats()
        self._stream = options.stream
        self._buffer: list[Entry] = []
        self._buffer_since = 0.0
        self._recovering = True
        self._claim_cursor = "0-0"
        self._claim_at = 0.0
        self._stats_at = 0.0
        self._prune_at = 0.0
        self._partitions: dict[int, Partition] = {}

    # lifecycle --------------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the consumer group at the start of the stream (a new group archives what is there already)."""
        try:
            self.client.xgroup_create(self._stream, self.options.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, stop: threading.Event | None = None, until_idle: bool = False) -> IngestStats:
        """Ingest until ``stop`` is set (then commit what is buffered), or, with ``until_idle``, until nothing is
        left to read."""
        stop = stop or threading.Event()
        if self.archive is not None and (removed := self.archive.remove_stale_temporaries()):
            log.info("removed %d temporary files left by a crash", removed)
        self.ensure_group()
        while not stop.is_set():
            try:
                with _collector_paused():
                    if self._recovering:
                        self._recover()
                    progressed = self._step(until_idle)
                if not progressed and until_idle:
                    break
            except redis.RedisError as exc:
                self._redis_failed(exc)
                if stop.wait(REDIS_RETRY_S):
                    break
            except OperationalError as exc:
                self._store_failed(exc)
                if stop.wait(REDIS_RETRY_S):
                    break
        if self._buffer:
            try:
                self._commit(self._buffer, redelivered=False)
            except (redis.RedisError, OperationalError) as exc:
                log.warning("could not commit the last batch at stop (it stays pending): %s", exc)
            self._buffer = []
        return self.stats

    def close(self) -> None:
        if self.scoring is not None:
            self.scoring.close()
        if self.rollups is not None:
            self.rollups.engine.dispose()
        self.client.close()

    # reading ----------------------------------------------------------------------------------------
    def _step(self, until_idle: bool) -> bool:
        """Read once and commit when a batch is full or old enough; False when there was nothing to read."""
        if not self._buffer and self._claim_due():
            claimed = self._claim()
            if claimed:
                self._commit(claimed, redelivered=True)
                return True
        wanted = self.options.batch - len(self._buffer)
        block: int | None = None  # until_idle: never wait
        if not until_idle:
            wait = self.options.flush_s
            if self._buffer:
                wait -= time.monotonic() - self._buffer_since
            # Short enough to notice a stop request soon; never 0 (that would block forever).
            block = max(1, min(int(wait * 1000), 500))
        got = self._read(">", wanted, block)
        if got and not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.extend(got)
        full = len(self._buffer) >= self.options.batch
        drained = until_idle and not got
        due = bool(self._buffer) and (drained or time.monotonic() - self._buffer_since >= self.options.flush_s)
        if full or due:
            batch, self._buffer = self._buffer, []
            self._commit(batch, redelivered=False)
        self._poll_stats()
        self._prune_rollups()
        return bool(got) or bool(self._buffer)

    def _read(self, start: str, count: int, block: int | None) -> list[Entry]:
        reply: Any = self.client.xreadgroup(
            self.options.group, self.options.consumer, {self._stream: start}, count=count, block=block
        )
        if not reply:
            return []
        entries: list[Entry] = reply[0][1]
        return entries

    def _recover(self) -> None:
        """Commit this consumer's pending entries (delivered to an earlier run of it, maybe archived already)."""
        recovered = 0
        while True:
            entries = self._read("0", self.options.batch, None)
            if not entries:
                break
            recovered += len(entries)
            self._commit(entries, redelivered=True)
        if recovered:
            log.info("recovered %d pending entries", recovered, extra={"consumer": self.options.consumer})
        self._recovering = False

    def _claim_due(self) -> bool:
        idle = self.options.claim_idle_s
        if idle is None:
            return False
        now = time.monotonic()
        if now < self._claim_at:
            return False
        self._claim_at = now + max(1.0, idle / 2)
        return True

    def _claim(self) -> list[Entry]:
        """Entries pending longer than ``claim_idle_s`` with any consumer (one ``XAUTOCLAIM`` page)."""
        assert self.options.claim_idle_s is not None
        reply = self.client.xautoclaim(
            self._stream,
            self.options.group,
            self.options.consumer,
            int(self.options.claim_idle_s * 1000),
            self._claim_cursor,
            count=self.options.batch,
        )
        cursor, entries, deleted = reply[0], reply[1], reply[2] if len(reply) > 2 else []
        self._claim_cursor = _text(cursor)
        if deleted:  # pending entries trimmed from the stream before anyone archived them
            self._count("trimmed", len(deleted))
        if entries:
            log.warning("claimed %d entries of a stalled or departed worker", len(entries))
        return list(entries)

    # committing -------------------------------------------------------------------------------------
    def _commit(self, entries: list[Entry], redelivered: bool) -> None:
        started = time.perf_counter()
        partitions, rejected = self._decode(entries)
        if redelivered and self.archive is not None:
            for partition, group in partitions.items():
                first = min(group, key=lambda r: stream_id_key(r.stream_id)).stream_id
                last = max(group, key=lambda r: stream_id_key(r.stream_id)).stream_id
                files = self.archive.files_between(partition, first, last)
                if self.rollups is not None and files:
                    self._counted(self.rollups.reconcile(files), 0)
                archived = self.archive.event_ids(files)
                if archived:
                    kept = [r for r in group if str(r.event["event_id"]) not in archived]
                    self._count("duplicate", len(group) - len(kept))
                    partitions[partition] = kept
        # The scorer, when there is one, gets signals of checked types; the archive checks them as it builds columns.
        self._enrich(
            [r for group in partitions.values() for r in group],
            checked=self.archive is None or self.scoring is not None,
        )
        staged: list[StagedFile] = []
        try:
            if self.archive is not None:
                for partition, group in partitions.items():
                    file, partitions[partition] = self._stage(partition, group, entries, rejected)
                    if file is not None:
                        staged.append(file)
            self._check_ownership(entries, exact=redelivered)
            for file in staged:
                file.publish()
        except OwnershipLost:
            for file in staged:
                file.discard()
            log.warning("entries of this batch were claimed by another worker; re-reading what is still ours")
            self._recovering = True
            return
        except BaseException:
            for file in staged:
                file.discard()
            raise
        if self.rollups is not None:
            applied = sum(self.rollups.apply(file.final, file.table) for file in staged)
            self._counted(applied, len(staged) - applied)
        if rejected:
            self._keep_rejected(rejected)
        self.client.xack(self._stream, self.options.group, *[entry_id for entry_id, _ in entries])
        fresh = [r for group in partitions.values() for r in group]
        self.stats.files += len(staged)
        self.stats.batches += 1
        self._count("archived", len(fresh))
        if self.scoring is not None:
            self.scoring.feed(sorted(fresh, key=lambda r: r.ts_us))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _enrich(self, records: list[Record], checked: bool) -> None:
        computed = enrich(records, checked)
        self.stats.signals_computed += computed
        self.metrics.signals_computed.inc(computed)

    def _stage(
        self, partition: Partition, records: list[Record], entries: list[Entry], rejected: list[Rejected]
    ) -> tuple[StagedFile | None, list[Record]]:
        """The partition's file, staged, and the records it holds: all of them, unless some do not fit the archive
        (another producer's types), which join ``rejected`` instead of stopping the worker."""
        assert self.archive is not None
        if not records:
            return None, records
        try:
            return self.archive.stage(partition, records), records
        except UnfitEvents as exc:
            log.warning("events in partition %s do not fit the archive (%s); checking them one by one", partition, exc)
        self._enrich(records, checked=True)  # stored signals of the wrong types are computed again
        fit, unfit = conform(records)
        if unfit:
            raw = {entry_id.decode(): fields.get(EVENT_FIELD, b"") for entry_id, fields in entries}
            rejected.extend((record.stream_id, raw[record.stream_id], reason) for record, reason in unfit)
            self._count("rejected", len(unfit))
        return (self.archive.stage(partition, fit) if fit else None), fit

    def _decode(self, entries: list[Entry]) -> tuple[dict[Partition, list[Record]], list[Rejected]]:
        """The events of ``entries`` by hour partition, each event id once; and the entries that are not events."""
        by_hour: dict[int, list[Record]] = {}
        rejected: list[Rejected] = []
        seen: set[str] = set()
        trimmed = duplicates = 0
        loads = orjson.loads
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: the PEL still names it, the data is gone
                trimmed += 1
                continue
            stream_id = entry_id.decode()
            raw = fields.get(EVENT_FIELD, b"")
            try:
                event = loads(raw)
            except orjson.JSONDecodeError as exc:
                rejected.append((stream_id, raw, f"not JSON: {exc}" if raw else "no event field"))
                continue
            if (
                type(event) is not dict
                or event.get("event_id") is None
                or event.get("ts") is None
                or event.get("account_id") is None
                or event.get("request") is None
            ):
                rejected.append((stream_id, raw, "not an event: event_id, ts, account_id and request are required"))
                continue
            try:
                ts_us = epoch_us(parse_rfc3339(str(event["ts"])))
            except (ValueError, TypeError, OverflowError):
                rejected.append((stream_id, raw, f"ts is not an RFC 3339 time: {event['ts']!r:.80}"))
                continue
            event_id = str(event["event_id"])
            if event_id in seen:
                duplicates += 1
                continue
            seen.add(event_id)
            hour = ts_us // HOUR_US
            group = by_hour.get(hour)
            if group is None:
                group = by_hour[hour] = []
            group.append(Record(stream_id, event, ts_us))
        self._count("trimmed", trimmed)
        self._count("duplicate", duplicates)
        self._count("rejected", len(rejected))
        return {self._partition(hour): group for hour, group in by_hour.items()}, rejected

    def _partition(self, hour: int) -> Partition:
        partition = self._partitions.get(hour)
        if partition is None:
            if len(self._partitions) > 4096:
                self._partitions.clear()
            partition = self._partitions[hour] = partition_of(hour * HOUR_US)
        return partition

    def _check_ownership(self, entries: list[Entry], exact: bool) -> None:
        """Raise OwnershipLost unless the group lists every entry of the batch as this consumer's.

        Between recoveries this consumer's pending list is exactly the batch (it acknowledges a batch before it
        reads more, and claims only with an empty buffer), so its pending count settles it in one cheap call;
        redelivered batches, or a count that differs, are checked entry by entry.
        """
        if not entries:
            return
        if not exact:
            for consumer in self.client.xinfo_consumers(self._stream, self.options.group):
                if _text(consumer["name"]) == self.options.consumer:
                    if int(consumer["pending"]) == len(entries):
                        return
                    break
        ids = sorted((entry_id.decode() for entry_id, _ in entries), key=stream_id_key)
        owned = self.client.xpending_range(
            self._stream, self.options.group, ids[0], ids[-1], len(ids), consumername=self.options.consumer
        )
        if len(owned) < len(ids):
            raise OwnershipLost

    def _keep_rejected(self, rejected: list[Rejected]) -> None:
        """Entries that are not events, or that the archive cannot hold, are kept beside it with the reason
        (``_rejected/``, which readers skip)."""
        if self.archive is None:
            return
        directory = self.archive.root / "_rejected"
        directory.mkdir(exist_ok=True)
        with (directory / f"{self.options.consumer}.jsonl").open("ab") as handle:
            for stream_id, raw, reason in rejected:
                line = {"stream_id": stream_id, "reason": reason, "raw": raw.decode("utf-8", "replace")}
                handle.write(orjson.dumps(line) + b"\n")
        log.warning("%d stream entries the archive cannot hold are kept in %s, each with why", len(rejected), directory)

    # bookkeeping ------------------------------------------------------------------------------------
    def _count(self, outcome: str, n: int) -> None:
        if not n:
            return
        self.metrics.events.labels(outcome).inc(n)
        if outcome == "archived":
            self.stats.archived += n
        elif outcome == "duplicate":
            self.stats.duplicates += n
        elif outcome == "trimmed":
            self.stats.trimmed += n
            log.error("%d stream entries were trimmed (MAXLEN) before they were archived", n)
        else:
            self.stats.rejected += n

    def _counted(self, counted: int, already: int) -> None:
        self.stats.rollup_files += counted
        self.metrics.rollup_files.labels("counted").inc(counted)
        self.metrics.rollup_files.labels("already").inc(already)

    def _prune_rollups(self) -> None:
        """Forget the counted files whose entries no worker can be given again: all below the group's oldest
        pending entry (or, with none pending, at or below the last entry delivered)."""
        now = time.monotonic()
        if self.rollups is None or now < self._prune_at:
            return
        self._prune_at = now + PRUNE_EVERY_S
        summary: Any = self.client.xpending(self._stream, self.options.group)
        if summary["pending"]:
            below = stream_id_key(_text(summary["min"]))
        else:
            group = next(
                (g for g in self.client.xinfo_groups(self._stream) if _text(g["name"]) == self.options.group), None
            )
            if group is None:
                return
            ms, seq = stream_id_key(_text(group["last-delivered-id"]))
            below = (ms, seq + 1)
        pruned = self.rollups.prune(below)
        if pruned:
            log.debug("pruned %d counted files from the rollups' record", pruned)

    def _poll_stats(self) -> None:
        now = time.monotonic()
        if now - self._stats_at < STATS_EVERY_S:
            return
        self._stats_at = now
        length, groups = read_stream_stats(self.client, self._stream)
        self.metrics.stream_length.set(length)
        lag, pending = groups.get(self.options.group, (None, 0))
        if lag is not None:
            self.metrics.lag.set(lag)
        self.metrics.pending.set(pending)

    def _store_failed(self, exc: OperationalError) -> None:
        self.metrics.store_errors.inc()
        # The batch's files may be published and not counted: its entries are pending, and read again (as
        # redelivered, which counts the files that are not) once the store answers.
        self._buffer = []
        self._recovering = True
        log.warning("the state store failed while counting the rollups (%s); retrying", exc.orig)

    def _redis_failed(self, exc: redis.RedisError) -> None:
        self.metrics.redis_errors.inc()
        # What was buffered is pending in the group: read it again (as redelivered) once Redis answers.
        self._buffer = []
        self._recovering = True
        if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
            log.warning("the consumer group is gone (Redis restarted without persistence?); creating it again")
            with contextlib.suppress(redis.RedisError):
                self.ensure_group()
        else:
            log.warning("Redis failed (%s); retrying", exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one read-and-commit step.

    A batch is tens of thousands of containers (the parsed events) that hold no reference cycles and are freed by
    reference counting when the step ends; while they live, the collector would trace them again and again and
    promote them into full collections, ~15% of a worker's CPU (measured). Cycles made meanwhile are collected
    after the step, when the collector runs again.
    """
    if not gc.isenabled():  # paused by another worker thread of this process, or off in this process
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
