"""`distillguard analyze --engine spark` against the embedded engine, on one Parquet archive written by ingest's code.

The world is the simulator's (benign populations, extraction attackers, hydra campaigns, a model released during
the run), archived with ``Archive`` and reshaped a little to reach the corners both engines must agree on: events
without signals (computed at read), ties in time (broken by stream id), malformed and missing client addresses,
missing statuses and event models. One Spark session serves the module (local mode, loopback only, no UI).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.batch.archive import archive_rows, write_records
from distillguard.batch.events import read_events
from distillguard.batch.features import feature_totals, model_clock
from distillguard.batch.profiles import account_profiles
from distillguard.batch.session import SparkUnavailable, spark_session
from distillguard.cli import app
from distillguard.clusters.find import build_profiles
from distillguard.clusters.profile import AGENT_CAP, PREFIX_CAP, TEMPLATE_CAP
from distillguard.detect.features import AccountState, ModelClock
from distillguard.detect.verdicts import FLAGGED
from distillguard.ingest.archive import Archive, Record
from distillguard.ingest.enrich import compute_signals
from distillguard.simulate import SimulationConfig, simulate
from distillguard.timefmt import epoch_us, parse_rfc3339

# Spark starts a JVM and runs dozens of small jobs: slower than the suite's default 120 s on a loaded machine.
pytestmark = pytest.mark.timeout(600)
runner = CliRunner()
# Small enough for a couple of Spark runs on two cores; chosen (seed) to hold three campaigns, members raised by
# their campaign, and accounts that pivot to the model released on the second day.
WORLD = SimulationConfig(accounts=80, days=2, seed=8, attack_share=0.3, events_scale=0.5)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    try:
        session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"})
    except SparkUnavailable as exc:  # make test installs pyspark; a machine without Java must say so, not skip
        pytest.fail(f"the Spark tests need pyspark and Java: {exc}")
    yield session
    session.stop()


def _reshape(i: int, event: dict[str, Any], previous_ts: str | None) -> dict[str, Any]:
    """Corners of real archives, on a few events: ties, odd addresses, no status, no event model."""
    if i % 10 == 0 and previous_ts is not None:
        event["ts"] = previous_ts  # the same microsecond as the event before (another account, usually)
    client = event.setdefault("client", {})
    if i % 37 == 0:
        client["ip"] = "not-an-address"
    elif i % 41 == 0:
        client["ip"] = ""
    elif i % 53 == 0 and client.get("ip") and ":" not in client["ip"]:
        client["ip"] = "::ffff:" + client["ip"]  # the same address, IPv4-mapped
    if i % 3 == 0:  # client fingerprints, HTTP and TLS, the account's own: more distinct ones than a profile keeps
        account = event["account_id"]
        client["fingerprint"], client["tls"] = f"h2-{account}-{i % 5}", f"ja4-{account}-{i % 7}"
    if i % 43 == 0:
        event.get("response", {}).pop("status", None)
    if i % 47 == 0:
        event.pop("model", None)  # read from the request instead
    return event


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark-world")
    simulate(WORLD, root / "sim")

    def records() -> Iterator[Record]:
        previous: str | None = None
        for i, line in enumerate((root / "sim" / "events.jsonl").read_bytes().splitlines()):
            event = _reshape(i, orjson.loads(line), previous)
            previous = event["ts"]
            ts_us = epoch_us(parse_rfc3339(event["ts"]))
            # Stream ids number the entries in the order they arrived, which the reshaped ties do not follow.
            stream_id = f"{ts_us // 1000}-{(7919 * i) % 100_003}"
            signals = None if i % 50 == 0 else compute_signals(event)  # None: analysis computes them
            yield Record(stream_id, event, ts_us, signals)

    write_records(Archive(root / "archive"), records(), batch=4000)
    return root


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_spark_engine_gives_the_embedded_verdicts(world: Path, spark: Any, tmp_path: Path) -> None:
    common = ["--events", str(world / "archive"), "--accounts", str(world / "sim" / "accounts.jsonl")]
    _run("analyze", *common, "--out", str(tmp_path / "embedded.jsonl"), "--engine", "embedded")
    output = _run(
        "analyze", *common, "--out", str(tmp_path / "spark.jsonl"), "--engine", "spark",
        "--spark-master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=4",
    )  # fmt: skip
    assert "campaigns of" in output
    embedded, on_spark = _lines(tmp_path / "embedded.jsonl"), _lines(tmp_path / "spark.jsonl")

    # What the world holds, so that agreeing means something.
    assert len(embedded) >= 50
    assert any(r["events_until_flagged"] for r in embedded if r["verdict"] in FLAGGED)
    raised = [r for r in embedded if r["reasons"] and r["reasons"][0]["signal"] == "campaign" and r["cluster_id"]]
    assert any(r["verdict"] in FLAGGED and r["risk"] > (r["model_risk"] or 0.0) for r in raised)
    assert any(reason["signal"] == "new_model_pivot" for r in embedded for reason in r["reasons"])

    # The same accounts, verdicts, flagged set and risks (to 1e-9; they are in fact bit-identical), reasons and
    # first flags; and then byte for byte.
    assert [r["account_id"] for r in on_spark] == [r["account_id"] for r in embedded]
    for mine, theirs in zip(on_spark, embedded, strict=True):
        assert mine["verdict"] == theirs["verdict"], mine["account_id"]
        assert abs(mine["risk"] - theirs["risk"]) <= 1e-9
        assert mine["cluster_id"] == theirs["cluster_id"]
        assert (mine["first_flagged_at"], mine["events_until_flagged"]) == (
            theirs["first_flagged_at"],
            theirs["events_until_flagged"],
        )
    assert {r["account_id"] for r in on_spark if r["verdict"] in FLAGGED} == {
        r["account_id"] for r in embedded if r["verdict"] in FLAGGED
    }
    assert (tmp_path / "spark.jsonl").read_bytes() == (tmp_path / "embedded.jsonl").read_bytes()

    # The same campaigns: ids (hashes of the member sets), members, verdicts, evidence; byte for byte.
    clusters_embedded = _lines(tmp_path / "embedded.clusters.jsonl")
    clusters_spark = _lines(tmp_path / "spark.clusters.jsonl")
    assert len(clusters_embedded) >= 2
    assert [(c["cluster_id"], c["verdict"], [m["account_id"] for m in c["members"]]) for c in clusters_spark] == [
        (c["cluster_id"], c["verdict"], [m["account_id"] for m in c["members"]]) for c in clusters_embedded
    ]
    assert (tmp_path / "spark.clusters.jsonl").read_bytes() == (tmp_path / "embedded.clusters.jsonl").read_bytes()


def test_spark_aggregates_are_the_replayed_state(world: Path, spark: Any) -> None:
    """Feature totals and linking profiles field by field, floats bit for bit, counters in insertion order."""
    rows = archive_rows(world / "archive")
    clock = ModelClock()
    states: dict[str, AccountState] = {}
    for ts_us, account_id, status, prompt, completion, model, signals, _ in rows:
        released = clock.observe(model, ts_us)
        state = states.setdefault(account_id, AccountState())
        state.update(ts_us, signals, status, prompt, completion, model, released)
    events = read_events(spark, str(world / "archive")).cache()
    try:
        spark_clock = model_clock(events)
        assert (spark_clock.log_start_us, list(spark_clock.first_seen.items())) == (
            clock.log_start_us,
            list(clock.first_seen.items()),
        )
        totals = feature_totals(events, "account_id", spark_clock)
        assert sorted(totals) == sorted(states)
        for account_id, state in states.items():
            assert totals[account_id] == state.totals(), account_id
            assert totals[account_id].vector() == state.vector()
        assert any(t.pivot_at_events for t in totals.values()) and any(t.gap_n > 1 for t in totals.values())

        profiles = account_profiles(events, {})
        expected = build_profiles(rows, {})
        assert sorted(profiles) == sorted(expected)
        for account_id, profile in expected.items():
            for field in dataclasses.fields(profile):
                mine, theirs = getattr(profiles[account_id], field.name), getattr(profile, field.name)
                if isinstance(theirs, dict):  # Counters and dicts: same items in the same order
                    mine, theirs = list(mine.items()), list(theirs.items())
                assert mine == theirs, (account_id, field.name)
        assert any(p.bad_address for p in expected.values())
        full = {
            name: cap
            for name, cap in (("prefixes", PREFIX_CAP), ("templates", TEMPLATE_CAP), ("fingerprints", AGENT_CAP))
        }
        assert all(any(len(getattr(p, name)) == cap for p in expected.values()) for name, cap in full.items())
    finally:
        events.unpersist()


def test_spark_engine_explains_what_it_needs(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"")
    jsonl = runner.invoke(app, ["analyze", "--events", str(log), "--out", "x", "--engine", "spark"])
    assert jsonl.exit_code == 1 and "the archive is the directory" in jsonl.output
    missing = runner.invoke(app, ["analyze", "--events", str(tmp_path / "none"), "--out", "x", "--engine", "spark"])
    assert missing.exit_code == 1 and "no event archive" in missing.output
    archive = str(world / "archive")
    glasswally = runner.invoke(
        app, ["analyze", "--events", archive, "--out", "x", "--engine", "spark", "--input-format", "glasswally"]
    )
    assert glasswally.exit_code == 1 and "native events" in glasswally.output
    bad_conf = runner.invoke(
        app, ["analyze", "--events", archive, "--out", "x", "--engine", "spark", "--spark-conf", "x"]
    )
    assert bad_conf.exit_code == 1 and "key=value" in bad_conf.output

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if the extra were not installed
    without = runner.invoke(app, ["analyze", "--events", archive, "--out", str(tmp_path / "v"), "--engine", "spark"])
    assert without.exit_code == 1 and "pip install 'distillguard[spark]'" in without.output


def test_spark_is_the_configured_engine(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "dg.toml"
    config.write_text('[analyze]\nengine = "spark"\nspark_master = "local[1]"\n')
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    result = runner.invoke(
        app, ["analyze", "--events", str(world / "archive"), "--out", str(tmp_path / "v"), "--config", str(config)]
    )
    assert result.exit_code == 1 and "distillguard[spark]" in result.output  # the Spark engine was chosen
