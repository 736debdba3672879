"""Reading an account's calls and a call by its id from the Parquet archive: newest first, only the hours the account
called in and the files appended while it did, never more files than the read's bound (and saying so), older files'
missing columns as None."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from distillguard.events.archive_calls import ArchiveCalls, Bound, Hour, request_time_us
from distillguard.events.logview import EXCHANGE_COLUMNS
from distillguard.events.rollups import HOUR_US
from distillguard.ingest.archive import Archive, Record, partition_of, read_archive
from tests.ingest.events import BASE_US, make_event

WIDE = Bound(files=10_000, rows=10_000_000)


def archive_of(root: Path, events: list[Any], per_file: int) -> None:
    """``events`` archived as a worker would, ``per_file`` to a file (each file within one hour)."""
    archive = Archive(root)
    for start in range(0, len(events), per_file):
        part = events[start : start + per_file]
        records = [Record(f"{e.ts_us // 1000 + 5}-{i}", e.to_json(), e.ts_us) for i, e in enumerate(part, start)]
        archive.stage(partition_of(part[0].ts_us), records).publish()


def calls_over(hours: int, per_hour: int) -> list[Any]:
    """Calls of three accounts, ``per_hour`` an hour over ``hours`` hours (gateway-form ids), in time order."""
    out = []
    for h in range(hours):
        for k in range(per_hour):
            ts = BASE_US - BASE_US % HOUR_US + h * HOUR_US + k * 1_000_000
            e = make_event(h * per_hour + k, ts_us=ts, account=("a", "b", "c")[k % 3])
            e.event_id = f"req_{ts:013x}{h * per_hour + k:011x}"
            out.append(e)
    return out


def places(root: Path, account_id: str) -> list[Hour]:
    """Where the account's calls are, as the rollups would say (account_hours), newest hour first."""
    rows = read_archive(root, ["account_id", "ts", "stream_id"]).to_pylist()
    hours: dict[int, tuple[int, int]] = {}
    for row in rows:
        if row["account_id"] != account_id:
            continue
        ts = int(row["ts"].timestamp() * 1_000_000)
        at = int(row["stream_id"].split("-")[0])
        low, high = hours.get(ts - ts % HOUR_US, (at, at))
        hours[ts - ts % HOUR_US] = (min(low, at), max(high, at))
    return [Hour(h, low, high) for h, (low, high) in sorted(hours.items(), reverse=True)]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every part file a read opens."""
    seen: list[Path] = []
    real = pq.ParquetFile

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", counting)
    return seen


def test_calls_come_newest_first_across_hours_and_files(tmp_path: Path) -> None:
    events = calls_over(hours=3, per_hour=30)
    archive_of(tmp_path, events, per_file=7)
    reader = ArchiveCalls(tmp_path, WIDE)
    got = reader.calls("b", places(tmp_path, "b"), 25, ["event_id", "ts_us", "text"])
    of_b = sorted((e for e in events if e.account_id == "b"), key=lambda e: e.ts_us, reverse=True)
    assert [r["event_id"] for r in got.rows] == [e.event_id for e in of_b[:25]] and got.complete
    assert all(isinstance(r["ts_us"], int) for r in got.rows)
    # All of them, when fewer than asked: the read went through every hour of the span.
    everything = reader.calls("b", places(tmp_path, "b"), 1000, ["event_id"])
    assert len(everything.rows) == 30 and everything.complete


def test_only_the_files_appended_while_the_account_called_are_read(tmp_path: Path, opened: list[Path]) -> None:
    events = calls_over(hours=4, per_hour=12)
    for e in events[12:24]:  # the second hour: only "d" calls there, in its middle
        e.account_id = "d" if 16 <= events.index(e) < 20 else "x"
    archive_of(tmp_path, events, per_file=2)  # six files an hour
    where = places(tmp_path, "d")
    assert len(where) == 1
    got = ArchiveCalls(tmp_path, WIDE).calls("d", where, 100, ["event_id"])
    assert [r["event_id"] for r in got.rows] == [e.event_id for e in events[16:20]][::-1] and got.complete
    assert len(opened) == 2 and {p.parent.name for p in opened} == {f"hour={partition_of(events[16].ts_us)[1]}"}


def test_a_read_stops_at_its_bound_and_says_it_did(tmp_path: Path, opened: list[Path]) -> None:
    events = calls_over(hours=2, per_hour=30)
    archive_of(tmp_path, events, per_file=3)  # 20 files
    got = ArchiveCalls(tmp_path, Bound(files=5, rows=1_000_000)).calls("c", places(tmp_path, "c"), 1000, ["event_id"])
    assert len(opened) == 5 and not got.complete and len(got.rows) == 5  # one call of "c" in each file read
    assert got.rows[0]["event_id"] == max(e.event_id for e in events if e.account_id == "c")
    by_rows = ArchiveCalls(tmp_path, Bound(files=1000, rows=9)).calls("c", places(tmp_path, "c"), 1000, ["event_id"])
    assert not by_rows.complete and len(by_rows.rows) == 3


def test_among_picks_the_calls_named(tmp_path: Path) -> None:
    events = calls_over(hours=2, per_hour=9)
    archive_of(tmp_path, events, per_file=4)
    wanted = {events[3].event_id, events[12].event_id, events[0].event_id}  # a, a, a
    got = ArchiveCalls(tmp_path, WIDE).calls("a", places(tmp_path, "a"), 3, EXCHANGE_COLUMNS, wanted)
    assert [r["event_id"] for r in got.rows] == [events[12].event_id, events[3].event_id, events[0].event_id]
    assert got.rows[0]["request"].startswith("{") and got.rows[0]["prompt_tokens"] == 9


def test_a_call_is_found_by_its_id_in_the_files_appended_after_it(tmp_path: Path, opened: list[Path]) -> None:
    events = calls_over(hours=3, per_hour=40)
    archive_of(tmp_path, events, per_file=4)  # 30 files
    target = events[55]
    assert request_time_us(target.event_id) == target.ts_us
    row = ArchiveCalls(tmp_path, WIDE).event(target.event_id, ["account_id", *EXCHANGE_COLUMNS], events[-1].ts_us)
    assert row is not None and row["event_id"] == target.event_id and row["account_id"] == target.account_id
    assert opened == [opened[0]] and opened[0].parent.name == f"hour={partition_of(target.ts_us)[1]}"  # the first
    opened.clear()
    # An id of another form is looked for in the newest hours, within the bound.
    other = events[-2]
    assert request_time_us("evt_000001") is None
    archive_of(tmp_path / "other", [_renamed(other, "evt_000001")], per_file=1)
    found = ArchiveCalls(tmp_path / "other", WIDE).event("evt_000001", ["account_id", "event_id"], events[-1].ts_us)
    assert found == {"account_id": other.account_id, "event_id": "evt_000001"}
    bounded = ArchiveCalls(tmp_path, Bound(files=4, rows=10**6))
    opened.clear()
    assert bounded.event("evt_missing", ["event_id"], events[-1].ts_us) is None and len(opened) == 4


def _renamed(event: Any, event_id: str) -> Any:
    event.event_id = event_id
    return event


def test_columns_an_older_archive_lacks_read_none(tmp_path: Path) -> None:
    events = calls_over(hours=1, per_hour=3)
    archive_of(tmp_path, events, per_file=3)
    (path,) = tmp_path.rglob("part-*.parquet")
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["client_tls", "sig_cot"]), path)  # as written before those columns existed
    got = ArchiveCalls(tmp_path, WIDE).calls("a", places(tmp_path, "a"), 5, ["event_id", "sig_cot"])
    assert got.rows == [{"event_id": events[0].event_id, "sig_cot": None}]
