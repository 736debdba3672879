"""Recorded watermark and provenance checks: kept and listed on SQLite and PostgreSQL, refused when malformed, and
recorded by `watermark detect --record` and `provenance test --record`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.store.state import open_store
from distillguard.watermark.checks import CheckError, checks_about, list_checks, parse_subject, record_check
from distillguard.watermark.text import mark
from tests.watermark.test_provenance import KEY, prose, suspect

DETECTION = {"scheme": "lexical-v1", "detected": True, "p_value": 2.5e-8, "scored": 300, "hits": 210}


def test_checks_are_recorded_and_listed_newest_first(tmp_path: Path, store_url: str) -> None:
    store = open_store(tmp_path, store_url, "secret")
    engine = store.engine
    try:
        first = record_check(
            engine,
            kind="watermark",
            subject_kind="account",
            subject_id="acme",
            actor="reviewer:ana",
            detected=True,
            p_value=2.5e-8,
            result=DETECTION,
        )
        second = record_check(
            engine,
            kind="provenance",
            subject_kind="model",
            subject_id="copycat-7b",
            actor="operator:bo",
            detected=False,
            p_value=0.41,
            result={"verdict": "not_detected", "detection": {"p_value": 0.41, "odd": math.nan}},
        )
        third = record_check(
            engine,
            kind="watermark",
            subject_kind=None,
            subject_id=None,
            actor="reviewer:ana",
            detected=False,
            p_value=None,
            result={},
        )
        assert all(re.fullmatch(r"chk_[0-9a-f]{12}", c) for c in (first, second, third))
        listed = list_checks(engine)
        assert [c["check_id"] for c in listed] == [third, second, first]
        newest = listed[-1]
        assert newest["subject"] == {"kind": "account", "id": "acme"} and newest["actor"] == "reviewer:ana"
        assert newest["detected"] is True and newest["p_value"] == pytest.approx(2.5e-8)
        assert newest["result"] == DETECTION and newest["at"].endswith("Z")
        assert listed[0]["subject"] is None and listed[0]["p_value"] is None
        # A NaN inside a result is stored as null (JSON has none; PostgreSQL refuses it).
        assert listed[1]["result"]["detection"] == {"p_value": 0.41, "odd": None}

        assert [c["check_id"] for c in list_checks(engine, subject_id="acme")] == [first]
        assert [c["check_id"] for c in list_checks(engine, kind="provenance")] == [second]
        assert [c["check_id"] for c in list_checks(engine, kind="watermark", limit=1)] == [third]
        assert [c["check_id"] for c in checks_about(engine, ["copycat-7b", "acme", "nobody"])] == [first, second]
    finally:
        store.close()


def test_malformed_checks_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    base: dict[str, Any] = {"actor": "reviewer:ana", "detected": False, "p_value": 0.5, "result": {}}
    try:
        with pytest.raises(CheckError, match="check kind"):
            record_check(store.engine, kind="vibes", subject_kind=None, subject_id=None, **base)
        with pytest.raises(CheckError, match="both a kind and an id"):
            record_check(store.engine, kind="watermark", subject_kind="account", subject_id=None, **base)
        with pytest.raises(CheckError, match="subject kind"):
            record_check(store.engine, kind="watermark", subject_kind="planet", subject_id="x", **base)
        with pytest.raises(CheckError, match="1 to 200"):
            record_check(store.engine, kind="watermark", subject_kind="account", subject_id="x" * 201, **base)
        with pytest.raises(CheckError, match="check kind"):
            list_checks(store.engine, kind="vibes")
        assert list_checks(store.engine) == []
    finally:
        store.close()


@pytest.mark.parametrize("text", ["account", "account:", ":acme", "planet:x", "model " + "x" * 10])
def test_malformed_subjects_are_refused(text: str) -> None:
    with pytest.raises(CheckError, match="account:ID"):
        parse_subject(text)


def test_subjects_parse() -> None:
    assert parse_subject("account:acme") == ("account", "acme")
    assert parse_subject(" Campaign : clu_1 ") == ("campaign", "clu_1")
    assert parse_subject("model:org/model:v2") == ("model", "org/model:v2")


runner = CliRunner()
ENV = {"DISTILLGUARD_SECRET": "deployment-secret"}


def recorded(data_dir: Path) -> list[dict[str, Any]]:
    store = open_store(data_dir, None, "deployment-secret")
    try:
        return list_checks(store.engine)
    finally:
        store.close()


def test_watermark_detect_records_the_check_when_asked(tmp_path: Path) -> None:
    leaked = tmp_path / "leaked.txt"
    leaked.write_text("\n\n".join(mark(prose(f"q{i}"), KEY, "strong") for i in range(40)))
    args = ["watermark", "detect", str(leaked), "--data-dir", str(tmp_path)]
    plain = runner.invoke(app, args, env=ENV)
    assert plain.exit_code == 0 and recorded(tmp_path) == []

    result = runner.invoke(app, [*args, "--account", "acme", "--record", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.stdout)
    [check] = recorded(tmp_path)
    assert check["check_id"] == shown["check_id"] and check["subject"] == {"kind": "account", "id": "acme"}
    assert check["kind"] == "watermark" and check["detected"] and check["p_value"] == shown["p_value"] <= 1e-6
    assert str(check["actor"]).startswith("operator:") and "check_id" not in check["result"]

    clean = tmp_path / "clean.txt"
    clean.write_text("\n\n".join(prose(f"q{i}") for i in range(40)))
    result = runner.invoke(
        app,
        ["watermark", "detect", str(clean), "--data-dir", str(tmp_path), "--record", "--subject", "text:memo-12"],
        env=ENV,
    )
    assert result.exit_code == 3 and "recorded check chk_" in result.output
    assert recorded(tmp_path)[0]["subject"] == {"kind": "text", "id": "memo-12"}
    assert not recorded(tmp_path)[0]["detected"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--record"], "--record needs --subject"),
        (["--record", "--account", "a", "--account", "b"], "--record needs --subject"),
        (["--subject", "account:a"], "only used with --record"),
        (["--record", "--subject", "galaxy:x"], "is not one of"),
    ],
)
def test_watermark_detect_record_usage_errors(tmp_path: Path, extra: list[str], said: str) -> None:
    text = tmp_path / "t.txt"
    text.write_text("Some text.")
    result = runner.invoke(app, ["watermark", "detect", str(text), "--data-dir", str(tmp_path), *extra], env=ENV)
    assert result.exit_code == 2 and said in result.output
    assert recorded(tmp_path) == []


def test_provenance_test_records_the_check_about_the_model(tmp_path: Path) -> None:
    args = ["provenance", "test", "--data-dir", str(tmp_path), "--model", "student-7b", "--queries", "150"]
    with suspect(lambda p: mark(prose(p), KEY, "strong")) as student:
        result = runner.invoke(app, [*args, "--endpoint", student, "--record", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    [check] = recorded(tmp_path)
    assert check["check_id"] == report["check_id"] and check["kind"] == "provenance" and check["detected"]
    assert check["subject"] == {"kind": "model", "id": "student-7b"}
    assert check["p_value"] == report["detection"]["p_value"] <= 1e-6
    assert check["result"]["verdict"] == "inherited"
    with suspect(prose) as control:
        result = runner.invoke(app, [*args, "--endpoint", control, "--record", "--subject", "campaign:clu_9"], env=ENV)
    assert result.exit_code == 3
    latest = recorded(tmp_path)[0]
    assert latest["subject"] == {"kind": "campaign", "id": "clu_9"} and not latest["detected"]
