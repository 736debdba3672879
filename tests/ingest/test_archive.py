"""The Parquet archive: hourly partitions, a schema that mirrors the event JSON, atomic and deterministic files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq

from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, to_signed64
from distillguard.ingest.archive import (
    SCHEMA,
    Archive,
    Record,
    file_range,
    part_files,
    partition_of,
    read_archive,
)
from tests.ingest.events import make_event

HOUR_US = 3_600_000_000


def record(i: int, ts_us: int | None = None, signals: bool = True) -> Record:
    event = make_event(i, ts_us=ts_us, signals=signals)
    return Record(f"1700000000000-{i}", event.to_json(), event.ts_us, event.signals)


def test_partitions_are_utc_days_and_hours() -> None:
    assert partition_of(0) == ("1970-01-01", "00")
    assert partition_of(HOUR_US * 25 + 1) == ("1970-01-02", "01")


def test_a_file_holds_its_rows_in_stream_order_under_a_name_of_their_range(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    records = [record(i) for i in (5, 2, 9)]
    path = archive.stage(partition_of(records[0].ts_us), records).publish()
    assert path.parent == tmp_path / "date=2026-11-18" / f"hour={partition_of(records[0].ts_us)[1]}"
    assert path.name == "part-1700000000000-2-1700000000000-9.parquet"
    assert file_range(path.name) == ((1700000000000, 2), (1700000000000, 9))
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA)
    assert table.column("stream_id").to_pylist() == [f"1700000000000-{i}" for i in (2, 5, 9)]


def test_rows_mirror_the_event_json(tmp_path: Path) -> None:
    rec = record(3)
    archive = Archive(tmp_path)
    archive.stage(partition_of(rec.ts_us), [rec]).publish()
    row = read_archive(tmp_path).to_pylist()[0]
    event = rec.event
    assert row["event_id"] == event["event_id"] and row["account_id"] == event["account_id"]
    assert int(row["ts"].timestamp() * 1_000_000) == rec.ts_us
    assert row["client_ip"] == event["client"]["ip"]
    assert row["prompt_tokens"] == 9 and row["completion_tokens"] == 40 and row["status"] == 200
    assert orjson.loads(row["request"]) == event["request"]
    assert row["extra"] is None and row["latency_ms"] == 12.5
    assert row["signals_version"] == SIGNALS_VERSION
    assert rec.signals is not None
    assert row["sig_domain"] == rec.signals.domain
    assert row["sig_content_sig"] == to_signed64(rec.signals.content_sig)
    assert {f"sig_{name}" for name in SIGNAL_COLUMNS} <= set(row)


def test_the_same_records_give_the_same_file_byte_for_byte(tmp_path: Path) -> None:
    first = Archive(tmp_path / "a").stage(("2026-11-18", "01"), [record(i) for i in range(20)]).publish()
    second = Archive(tmp_path / "b").stage(("2026-11-18", "01"), [record(i) for i in reversed(range(20))]).publish()
    assert first.name == second.name and first.read_bytes() == second.read_bytes()


def test_a_staged_file_is_invisible_until_published_and_discard_leaves_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path, writer="w1")
    staged = archive.stage(("2026-11-18", "01"), [record(1)])
    assert staged.tmp.exists() and staged.tmp.name.startswith(".w1.")
    assert part_files(tmp_path) == [] and read_archive(tmp_path).num_rows == 0
    staged.discard()
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_restarted_writer_removes_only_its_own_temporaries(tmp_path: Path) -> None:
    Archive(tmp_path, writer="w1").stage(("2026-11-18", "01"), [record(1)])
    Archive(tmp_path, writer="w2").stage(("2026-11-18", "01"), [record(2)])
    assert Archive(tmp_path, writer="w1").remove_stale_temporaries() == 1
    assert [p.name[:4] for p in tmp_path.rglob(".*.tmp")] == [".w2."]


def test_event_ids_between_reads_the_files_whose_range_meets_and_no_other(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    partition = ("2026-11-18", "01")
    archive.stage(partition, [record(1), record(3)]).publish()
    archive.stage(partition, [record(10), record(12)]).publish()
    meets_first = archive.event_ids_between(partition, "0-0", "1700000000000-1")
    assert meets_first == {make_event(1).event_id, make_event(3).event_id}
    assert archive.event_ids_between(partition, "1700000000000-4", "1700000000000-9") == set()
    assert archive.event_ids_between(("2026-11-18", "02"), "0-0", "9999999999999-0") == set()
