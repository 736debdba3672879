"""The Parquet archive: hourly partitions, a schema that mirrors the event JSON, atomic and deterministic files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillguard.detect.signals import extract
from distillguard.events.schema import SCHEMA_VERSION
from distillguard.events.signals import SIGNAL_COLUMNS, SIGNALS_VERSION, RequestSignals, as_row, to_object, to_signed64
from distillguard.ingest.archive import (
    SCHEMA,
    Archive,
    Record,
    UnfitEvents,
    build_table,
    conform,
    file_range,
    in_stream_order,
    part_files,
    partition_of,
    read_archive,
)
from tests.ingest.events import BASE_US, make_event

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
    assert isinstance(rec.signals, RequestSignals)
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


def expected_row(record: Record) -> dict[str, Any]:
    """The archive's row for a record, by its definition (docs/events.md), one field at a time."""
    event = record.event
    client = event.get("client") or {}
    response = event.get("response") or {}
    usage = response.get("usage") or {}
    signals = record.signals
    if isinstance(signals, dict):
        signals = RequestSignals(**{name: signals[name] for name in SIGNAL_COLUMNS})
    row = {
        "stream_id": record.stream_id,
        "event_id": str(event["event_id"]),
        "ts": record.ts_us,
        "account_id": str(event["account_id"]),
        "key_id": event.get("key_id"),
        "org_id": event.get("org_id"),
        "client_ip": client.get("ip"),
        "user_agent": client.get("user_agent"),
        "client_fingerprint": client.get("fingerprint"),
        "client_tls": client.get("tls"),
        "endpoint": event.get("endpoint"),
        "model": event.get("model"),
        "upstream": event.get("upstream"),
        "stream": bool(event.get("stream", False)),
        "request": orjson.dumps(event["request"]).decode(),
        "status": response.get("status"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "finish_reason": response.get("finish_reason"),
        "text": response.get("text"),
        "text_sha256": response.get("text_sha256"),
        "latency_ms": response.get("latency_ms"),
        "ttft_ms": response.get("ttft_ms"),
        "error_code": response.get("error_code"),
        "extra": orjson.dumps(event["extra"]).decode() if event.get("extra") else None,
        "schema_version": event.get("schema_version", SCHEMA_VERSION),
        "signals_version": SIGNALS_VERSION if signals is not None else None,
    }
    values = as_row(signals) if signals is not None else (None,) * len(SIGNAL_COLUMNS)
    row.update(zip((f"sig_{name}" for name in SIGNAL_COLUMNS), values, strict=True))
    return row


_text = st.text(max_size=12)
_maybe_text = st.none() | _text
_int32 = st.none() | st.integers(-(2**31), 2**31 - 1)
_int64 = st.none() | st.integers(-(2**63), 2**63 - 1)
_float = st.none() | st.floats(allow_nan=False) | st.integers(-(2**53), 2**53)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
# Absent, null or empty objects: all mean "no fields".
_nothing: st.SearchStrategy[Any] = st.sampled_from([None, {}, [], ""])
_client = _nothing | st.fixed_dictionaries(
    {}, optional={"ip": _maybe_text, "user_agent": _maybe_text, "fingerprint": _maybe_text, "tls": _maybe_text}
)
_usage = _nothing | st.fixed_dictionaries({}, optional={"prompt_tokens": _int64, "completion_tokens": _int64})
_response = _nothing | st.fixed_dictionaries(
    {},
    optional={
        "status": _int32,
        "usage": _usage,
        "finish_reason": _maybe_text,
        "text": _maybe_text,
        "text_sha256": _maybe_text,
        "latency_ms": _float,
        "ttft_ms": _float,
        "error_code": _maybe_text,
    },
)
_base_signals = extract(
    {"messages": [{"role": "user", "content": "Solve step by step: 2x + 3 = 7"}]}, "/v1/chat/completions"
)
_signals = st.none() | st.builds(
    lambda sig, depth, temperature: dataclasses.replace(
        _base_signals, content_sig=sig, depth=depth, temperature=temperature
    ),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**62),
    st.none() | st.floats(0, 2, allow_nan=False),
)
_event = st.fixed_dictionaries(
    {"event_id": _text | st.integers(), "account_id": _text, "request": _json.filter(lambda v: v is not None)},
    optional={
        "key_id": _maybe_text,
        "org_id": _maybe_text,
        "client": _client,
        "endpoint": _maybe_text,
        "model": _maybe_text,
        "upstream": _maybe_text,
        "stream": st.none() | st.booleans() | st.integers(0, 2),
        "response": _response,
        "extra": st.none() | st.dictionaries(_text, _json, max_size=2),
        "schema_version": _int32,
    },
)


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(_event, _signals, st.booleans()), min_size=1, max_size=6))
def test_the_columns_hold_each_field_of_the_event_json(events: list[tuple[dict[str, Any], Any, bool]]) -> None:
    # Signals as a record (computed or checked) or as the event's own object (what ingest archives as it came).
    records = [
        Record(f"1700000000000-{i}", event, BASE_US + i, to_object(signals) if stored and signals else signals)
        for i, (event, signals, stored) in enumerate(events)
    ]
    expected = pa.Table.from_pylist([expected_row(r) for r in records], schema=SCHEMA)
    fit, unfit = conform(records)
    assert unfit == [] and build_table(fit).equals(expected)
    if all(follows_the_schema(event) for event, _, _ in events):
        assert build_table(records).equals(expected)  # what ingest does for events that follow docs/events.md


def follows_the_schema(event: dict[str, Any]) -> bool:
    """Text ids and objects (or null) where docs/events.md has objects."""

    def object_or_null(value: Any) -> bool:
        return value is None or isinstance(value, dict)

    response = event.get("response")
    return (
        isinstance(event["event_id"], str)
        and object_or_null(event.get("client"))
        and object_or_null(response)
        and object_or_null((response or {}).get("usage"))
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"response": {"status": "200"}}, "response.status: Could not convert '200'"),
        ({"key_id": 5}, "key_id: Expected bytes"),
        ({"client": "203.0.113.7"}, "client is not an object"),
        ({"client": [["ip", "203.0.113.7"]]}, "client is not an object"),
        ({"response": {"usage": 12}}, "response.usage is not an object"),
        ({"response": {"usage": {"prompt_tokens": 2**64}}}, "response.usage.prompt_tokens:"),
    ],
)
def test_an_event_whose_fields_do_not_fit_is_set_aside_with_the_field_named(
    change: dict[str, Any], reason: str
) -> None:
    good, bad = record(1), record(2)
    bad.event.update(change)
    with pytest.raises(UnfitEvents):
        build_table([good, bad])
    fit, unfit = conform([good, bad])
    assert [r.stream_id for r in fit] == [good.stream_id]
    assert [(r.stream_id, why[: len(reason)]) for r, why in unfit] == [(bad.stream_id, reason)]
    assert build_table(fit).num_rows == 1


def test_rows_are_ordered_by_stream_id_as_numbers() -> None:
    ids = ["1700000000001-0", "1700000000000-10", "1700000000000-9", "999999999999-5"]
    records = [Record(stream_id, {}, 0) for stream_id in ids]
    assert [r.stream_id for r in in_stream_order(records)] == [
        "999999999999-5",
        "1700000000000-9",
        "1700000000000-10",
        "1700000000001-0",
    ]
