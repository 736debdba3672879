"""The detection pipeline as a user runs it: simulate, train, analyze, evaluate."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    run("simulate", "--accounts", "80", "--days", "1", "--seed", "5", "--attack-share", "0.25", "--out", str(out))
    return out


def test_simulate_writes_the_three_files(sim: Path) -> None:
    labels = [orjson.loads(line) for line in (sim / "labels.jsonl").read_bytes().splitlines()]
    assert len(labels) == 80 and {row["label"] for row in labels} == {"benign", "attack"}
    assert (sim / "events.jsonl").stat().st_size > 0 and (sim / "accounts.jsonl").exists()


def test_train_analyze_evaluate(sim: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.skops"
    run("train", "--data", str(sim), "--out", str(model), "--version", "risk-test")
    verdicts = tmp_path / "verdicts.jsonl"
    output = run(
        "analyze",
        "--events",
        str(sim / "events.jsonl"),
        "--accounts",
        str(sim / "accounts.jsonl"),
        "--model",
        str(model),
        "--out",
        str(verdicts),
        "--workers",
        "1",
    )
    assert "accounts; flagged" in output
    rows = [orjson.loads(line) for line in verdicts.read_bytes().splitlines()]
    assert rows and all(0.0 <= r["risk"] <= 1.0 and r["reasons"] for r in rows)
    assert any(r["model_risk"] is not None for r in rows)
    report_path = tmp_path / "report.json"
    table = run(
        "evaluate",
        "--verdicts",
        str(verdicts),
        "--labels",
        str(sim / "labels.jsonl"),
        "--events",
        str(sim / "events.jsonl"),
        "--out",
        str(report_path),
    )
    report = orjson.loads(report_path.read_bytes())
    assert 0.5 < report["roc_auc"] <= 1.0 and "baselines" in report
    assert "roc_auc" in table and "per population" in table


def test_peer_format_is_read(tmp_path: Path) -> None:
    lines = [
        {
            "account_id": f"sk-{i % 3}",
            "timestamp": f"2026-02-27T20:08:{i:02d}.000000+00:00",
            "model": "gpt-4o",
            "prompt": "Think out loud: how does a compiler work?" if i % 3 == 0 else "What foods have vitamin C?",
            "system_prompt": None,
            "token_count": 20,
            "max_tokens": 4096,
            "campaign_label": "c1" if i % 3 == 0 else None,
        }
        for i in range(30)
    ]
    log = tmp_path / "peer.jsonl"
    log.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    verdicts = tmp_path / "v.jsonl"
    run(
        "analyze",
        "--events",
        str(log),
        "--input-format",
        "glasswally",
        "--out",
        str(verdicts),
        "--rules-only",
        "--workers",
        "1",
    )
    run("evaluate", "--verdicts", str(verdicts), "--glasswally-log", str(log))
    assert len(verdicts.read_bytes().splitlines()) == 3


def test_bad_inputs_fail_with_a_message(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["analyze", "--events", str(tmp_path / "none.jsonl"), "--out", "x"])
    assert missing.exit_code == 1 and "no event log" in missing.output
    fmt = runner.invoke(app, ["analyze", "--events", str(tmp_path), "--out", "x", "--input-format", "csv"])
    assert fmt.exit_code == 1 and "unknown input format" in fmt.output
    both = runner.invoke(app, ["evaluate", "--verdicts", "v"])
    assert both.exit_code == 1 and "exactly one of" in both.output


def test_analyze_links_campaigns_and_clusters_lists_them(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    run("simulate", "--accounts", "150", "--days", "1", "--seed", "8", "--attack-share", "0.3", "--out", str(sim))
    verdicts = tmp_path / "v.jsonl"
    output = run("analyze", "--events", str(sim / "events.jsonl"), "--accounts", str(sim / "accounts.jsonl"),
                 "--out", str(verdicts), "--workers", "1")  # fmt: skip
    assert "campaigns of" in output
    rows = {r["account_id"]: r for r in map(orjson.loads, verdicts.read_bytes().splitlines())}
    labels = [orjson.loads(line) for line in (sim / "labels.jsonl").read_bytes().splitlines()]
    hydra = [lb["account_id"] for lb in labels if lb["population"] == "hydra_campaign" and lb["account_id"] in rows]
    assert hydra and all(rows[a]["cluster_id"] for a in hydra)
    assert any(r["signal"] == "campaign" for a in hydra for r in rows[a]["reasons"])
    campaigns = [orjson.loads(line) for line in (tmp_path / "v.clusters.jsonl").read_bytes().splitlines()]
    assert {m["account_id"] for c in campaigns for m in c["members"]} >= set(hydra)
    assert all(c["evidence"] and c["capabilities"] and c["events"] > 0 for c in campaigns)
    table = run("clusters", "--verdicts", str(verdicts))
    assert campaigns[0]["cluster_id"] in table and "evidence" in table
    report = tmp_path / "report.json"
    run("evaluate", "--verdicts", str(verdicts), "--labels", str(sim / "labels.jsonl"), "--out", str(report))
    clusters = orjson.loads(report.read_bytes())["clusters"]
    # One day of traffic: the campaign is found whole or in a few parts (ARI is measured on 5-day runs).
    assert -1.0 <= clusters["ari"] <= 1.0 and clusters["clustered_share"] >= 0.9 and clusters["campaign_recall"] == 1.0
    assert clusters["benign_in_attack_cluster_share"] < 0.05


def test_clusters_needs_one_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["clusters"])
    assert result.exit_code != 0 and "exactly one" in result.output
    result = runner.invoke(app, ["clusters", "--verdicts", str(tmp_path / "missing.jsonl")])
    assert result.exit_code != 0 and "no campaigns file" in result.output
