"""An account's calls, and a call by its id, read from the Parquet archive the ingest workers write
(``DIR/date=YYYY-MM-DD/hour=HH/part-<first>-<last>.parquet``, ingest/archive.py).

The archive has no index by account; the rollups the workers keep say where an account's calls are
(``account_hours``: the hours it called in, and in each the range of stream ids its calls were appended at). A read
is given those places, newest first (:class:`Hour`), and in each hour opens only the part files whose stream-id
range (in their names) meets the account's, newest first. Of each file it reads the footer, skips the row groups
whose ``account_id`` statistics exclude the account, and compares the ``account_id`` column of the others; of the
files that hold rows it returns it reads the columns asked for, only of the row groups holding them. It stops when
it has found as many calls as asked, or at its :class:`Bound` (files opened, rows compared): whatever the archive's
size, one read costs at most that, and says whether it was complete.

What a read costs is mostly files opened (a footer of ~45 columns to parse), rows compared, and the prompt and
answer columns decoded for the rows returned; docs/console.md gives measured figures.

Calls are newest first by their time; within the hour where a read stops early they are the newest the stream
delivered, which can differ from the newest by time by the delay between a call and its append (seconds).
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillguard.events.logview import Calls, Series, SeriesPoint, check_columns
from distillguard.events.rollups import HOUR_US
from distillguard.ingest.archive import file_range, partition_dir, partition_of, partition_start
from distillguard.ingest.rollups import refused, tokens

log = logging.getLogger(__name__)

# A stream entry's id is the Redis server's clock when it was appended, after the call: a file whose entries were
# all appended before an instant (less this much clock skew between a gateway and Redis) holds no call after it.
CLOCK_SKEW_MS = 300_000
_REQUEST_ID = "req_"
_SERIES_COLUMNS = ["account_id", "ts", "status", "prompt_tokens", "completion_tokens"]
# Reads of at most this many rows (an archive written under light traffic: a file every few seconds) run in the
# calling thread: Arrow's thread pool costs more than it saves on them.
SMALL_READ_ROWS = 256


@dataclass(frozen=True, slots=True)
class Bound:
    """The most one read may cost: part files opened, and rows whose account id it compares."""

    files: int
    rows: int


@dataclass(frozen=True, slots=True)
class Hour:
    """Where calls are: an hour partition (its start), and the range of times (epoch ms) they were appended at."""

    hour_us: int
    first_ms: int
    last_ms: int


@dataclass(frozen=True, slots=True, order=True)
class _Part:
    """A part file of an hour partition, with the range of times (epoch ms) its entries were appended at."""

    first_ms: int
    last_ms: int
    name: str
    path: Path


@dataclass
class _File:
    path: Path
    handle: pq.ParquetFile
    groups: list[int]
    # Rows in ``groups``: a read of a few rows is not worth handing to Arrow's thread pool.
    size: int = 0

    @property
    def threads(self) -> bool:
        return self.size > SMALL_READ_ROWS


@dataclass
class _Scan:
    """What a scan found: per file, the matching rows (their index among the row groups read) and times."""

    files: list[_File] = field(default_factory=list)
    found: list[tuple[int, int, int]] = field(default_factory=list)  # (ts_us, file number, row)
    opened: int = 0
    compared: int = 0
    complete: bool = True


@dataclass
class Found:
    """An account's calls located in the archive, newest first, to read the columns wanted of them."""

    files: list[_File]
    rows: list[tuple[int, int, int]]  # (ts_us, file number, row), newest first
    complete: bool
    opened: int = 0
    compared: int = 0

    def read(self, columns: Sequence[str], count: int | None = None) -> list[dict[str, Any]]:
        """``columns`` (event-log names: ``ts_us`` is the archive's ``ts``) of the first ``count`` calls (all)."""
        check_columns(columns)
        picked = self.rows[:count]
        by_file: dict[int, list[tuple[int, int]]] = {}
        for position, (_, number, row) in enumerate(picked):
            by_file.setdefault(number, []).append((position, row))
        out: list[dict[str, Any]] = [{} for _ in picked]
        for number, picks in by_file.items():
            values = _read(self.files[number], columns, [row for _, row in picks])
            for (position, _), value in zip(picks, values, strict=True):
                out[position] = value
        return out


def _read(file: _File, columns: Sequence[str], rows: list[int]) -> list[dict[str, Any]]:
    """``columns`` of the given rows of the file (numbered among its row groups read), in that order; a column the
    file lacks (an archive older than it) reads None. Only the row groups holding those rows are read (one call)."""
    names = file.handle.schema_arrow.names
    present = [c for c in dict.fromkeys(_archived(c) for c in columns) if c in names]
    meta = file.handle.metadata
    starts, start = [], 0
    for group in file.groups:
        starts.append(start)
        start += meta.row_group(group).num_rows
    needed = sorted({bisect_right(starts, row) - 1 for row in rows})  # positions among file.groups
    offset, at = {}, 0  # where each needed group's rows begin in what is read
    for position in needed:
        offset[position] = at
        at += meta.row_group(file.groups[position]).num_rows
    table = file.handle.read_row_groups([file.groups[p] for p in needed], columns=present, use_threads=file.threads)
    picks = [offset[p] + row - starts[p] for row in rows for p in [bisect_right(starts, row) - 1]]
    return _values(table.take(pa.array(picks, pa.int64())), columns)


def _values(table: pa.Table, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``table`` (archive columns) as dicts of ``columns`` (event-log names)."""
    if "ts" in table.column_names:
        table = table.set_column(table.column_names.index("ts"), "ts", pc.cast(table.column("ts"), pa.int64()))
    return [{c: value.get(_archived(c)) for c in columns} for value in table.to_pylist()]


def _archived(column: str) -> str:
    """An event-log column's name in the archive (``ts_us`` is ``ts`` there)."""
    return "ts" if column == "ts_us" else column


def request_time_us(event_id: str) -> int | None:
    """The time a gateway-made event id carries (``req_`` + 13 hex digits of epoch microseconds + 11 random,
    gateway/app.py ``new_request_id``); None for ids of another form."""
    if len(event_id) != len(_REQUEST_ID) + 24 or not event_id.startswith(_REQUEST_ID):
        return None
    try:
        return int(event_id[len(_REQUEST_ID) : len(_REQUEST_ID) + 13], 16)
    except ValueError:
        return None


def _may_hold(statistics: Any, value: str) -> bool:
    """Whether a row group whose column has these statistics can hold ``value`` (no statistics: it can)."""
    if statistics is None or not statistics.has_min_max:
        return True
    low, high = statistics.min, statistics.max
    if isinstance(low, bytes) or isinstance(high, bytes):
        return True  # statistics of another logical type than text: no conclusion
    return bool(low <= value <= high)


def _open_file(path: Path) -> pq.ParquetFile | None:
    """A part file, read with its column chunks fetched together; None when it went (retention may delete
    partitions while a read runs)."""
    try:
        return pq.ParquetFile(path, memory_map=True, pre_buffer=True)
    except FileNotFoundError:
        return None


class ArchiveCalls:
    def __init__(self, root: Path, bound: Bound) -> None:
        self.root = root
        self.bound = bound

    # where to look ----------------------------------------------------------------------------------------------
    def _files(self, hour_us: int, first_ms: int | None = None, last_ms: int | None = None) -> list[_Part]:
        """The hour's part files with entries appended within [first_ms, last_ms] (either end open), newest first."""
        found = []
        try:
            entries = list(os.scandir(partition_dir(self.root, partition_of(hour_us))))
        except FileNotFoundError:
            return []
        for entry in entries:
            bounds = file_range(entry.name)
            if bounds is None:
                continue
            (low, _), (high, _) = bounds
            if (first_ms is not None and high < first_ms) or (last_ms is not None and low > last_ms):
                continue
            found.append(_Part(low, high, entry.name, Path(entry.path)))
        found.sort(reverse=True)
        return found

    def _hours_on_disk(self, newest_us: int) -> Iterator[int]:
        """Every hour partition at or before ``newest_us``, newest first (for ids that do not say their time)."""
        last = partition_of(newest_us)
        try:
            dates = sorted((e.name for e in os.scandir(self.root) if e.name.startswith("date=")), reverse=True)
        except FileNotFoundError:
            return
        for date in dates:
            try:
                hours = sorted(
                    (e.name for e in os.scandir(self.root / date) if e.name.startswith("hour=")), reverse=True
                )
            except FileNotFoundError:
                continue
            for hour in hours:
                partition = (date[len("date=") :], hour[len("hour=") :])
                if partition <= last:
                    yield partition_start(partition)

    def _open(self, path: Path, column: str, value: str, scan: _Scan) -> _File | None:
        """The file with the row groups whose statistics of ``column`` admit ``value``; None when none does."""
        handle = _open_file(path)
        if handle is None:
            return None
        scan.opened += 1
        names = handle.schema_arrow.names
        if column not in names:
            return None
        index = names.index(column)
        meta = handle.metadata
        groups = [g for g in range(meta.num_row_groups) if _may_hold(meta.row_group(g).column(index).statistics, value)]
        return _File(path, handle, groups, sum(meta.row_group(g).num_rows for g in groups)) if groups else None

    def _spent(self, scan: _Scan) -> bool:
        if scan.opened >= self.bound.files or scan.compared >= self.bound.rows:
            scan.complete = False
            return True
        return False

    # an account's calls -----------------------------------------------------------------------------------------
    def find(self, account_id: str, hours: Iterable[Hour], limit: int, among: Collection[str] | None = None) -> Found:
        """Where the account's latest ``limit`` calls are, given the places it called (newest first); only those
        whose event id is in ``among``, when given."""
        if limit <= 0 or (among is not None and not among):
            return Found([], [], True)
        scan = _Scan()
        wanted = None if among is None else pa.array(list(among), pa.string())
        columns = ["account_id", "ts", *(["event_id"] if wanted is not None else [])]
        for hour in hours:
            for part in self._files(hour.hour_us, hour.first_ms, hour.last_ms):
                if self._spent(scan):
                    break
                file = self._open(part.path, "account_id", account_id, scan)
                if file is None:
                    continue
                table = file.handle.read_row_groups(file.groups, columns=columns, use_threads=file.threads)
                scan.compared += table.num_rows
                mask = pc.equal(table.column("account_id"), account_id)
                if wanted is not None:
                    mask = pc.and_(mask, pc.is_in(table.column("event_id"), value_set=wanted))
                rows = pc.indices_nonzero(mask)
                if len(rows) == 0:
                    continue
                times = pc.cast(table.column("ts").take(rows), pa.int64()).to_pylist()
                number = len(scan.files)
                scan.files.append(file)
                scan.found.extend(zip(times, [number] * len(rows), rows.to_pylist(), strict=True))
                if len(scan.found) >= limit:
                    break
            if len(scan.found) >= limit or not scan.complete:
                break
        if not scan.complete:
            log.info(
                "archive read for %r stopped at its bound (%d files, %d rows)", account_id, scan.opened, scan.compared
            )
        newest = sorted(scan.found, reverse=True)[:limit]
        return Found(scan.files, newest, scan.complete, scan.opened, scan.compared)

    def calls(
        self,
        account_id: str,
        hours: Iterable[Hour],
        limit: int,
        columns: Sequence[str],
        among: Collection[str] | None = None,
    ) -> Calls:
        """The account's latest ``limit`` calls, newest first, with ``columns``."""
        check_columns(columns)
        found = self.find(account_id, hours, limit, among)
        return Calls(found.read(columns), found.complete)

    # a call by its id -------------------------------------------------------------------------------------------
    def event(self, event_id: str, columns: Sequence[str], newest_us: int) -> dict[str, Any] | None:
        """A call by its id: in the hour its id's time names (gateway-made ids), in the files appended after that
        time, earliest first; otherwise through the newest hours before ``newest_us``, within the bound."""
        check_columns([c for c in columns if c != "account_id"])
        scan = _Scan()
        at = request_time_us(event_id)
        candidates: Iterable[Path]
        if at is not None:
            at_ms = at // 1000
            files = self._files(at - at % HOUR_US, at_ms - CLOCK_SKEW_MS)
            # Appended at or after the call, earliest first: the first of these is where a call usually is.
            after = sorted(f for f in files if f.last_ms >= at_ms)
            candidates = [f.path for f in [*after, *(f for f in files if f.last_ms < at_ms)]]
        else:
            candidates = (f.path for hour in self._hours_on_disk(newest_us) for f in self._files(hour))
        for path in candidates:
            if self._spent(scan):
                break
            file = self._open(path, "event_id", event_id, scan)
            if file is None:
                continue
            table = file.handle.read_row_groups(file.groups, columns=["event_id"])
            scan.compared += table.num_rows
            rows = pc.indices_nonzero(pc.equal(table.column("event_id"), event_id))
            if len(rows):
                return _read(file, columns, [rows[0].as_py()])[0]
        return None

    # traffic over time ------------------------------------------------------------------------------------------
    def series(self, ids: Sequence[str], hours: Iterable[Hour], first_us: int, last_us: int, bucket_us: int) -> Series:
        """The accounts' calls, tokens and refusals per bucket over ``[first_us, last_us]``, from the files of the
        places they called (within the bound: a series that stops early covers the newest part)."""
        scan = _Scan()
        members = pa.array(list(ids), pa.string())
        parts: list[pa.Table] = []
        for hour in hours:
            for part in self._files(hour.hour_us, hour.first_ms, hour.last_ms):
                if self._spent(scan):
                    break
                handle = _open_file(part.path)
                if handle is None:
                    continue
                scan.opened += 1
                table = handle.read(columns=[c for c in _SERIES_COLUMNS if c in handle.schema_arrow.names])
                scan.compared += table.num_rows
                ts = pc.cast(table.column("ts"), pa.int64())
                keep = pc.and_(
                    pc.is_in(table.column("account_id"), value_set=members),
                    pc.and_(pc.greater_equal(ts, first_us), pc.less_equal(ts, last_us)),
                )
                if pc.any(keep).as_py():
                    parts.append(table.filter(keep))
            if not scan.complete:
                break
        if not parts:
            return Series([], scan.complete)
        rows = pa.concat_tables(parts, promote_options="default")
        ts = pc.cast(rows.column("ts"), pa.int64())
        counted = pa.table(
            {
                "account_id": rows.column("account_id"),
                "start_us": pc.subtract(ts, pc.modulo(ts, bucket_us)),
                "tokens": pc.add(tokens(rows, "prompt_tokens"), tokens(rows, "completion_tokens")),
                "refused": refused(rows.column("status")),
            }
        )
        grouped = counted.group_by(["account_id", "start_us"]).aggregate(
            [("tokens", "count"), ("tokens", "sum"), ("refused", "sum")]
        )
        points = [
            SeriesPoint(r["account_id"], r["start_us"], r["tokens_count"], r["tokens_sum"], r["refused_sum"])
            for r in grouped.to_pylist()
        ]
        return Series(points, scan.complete)
