"""`distillguard clusters --data-dir` and `analyze --data-dir` keep what they find in the deployment's store, where
the console reads it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.detect.saved import save_analysis
from distillguard.store import open_store
from distillguard.store.schema import campaign_members, campaigns, score_history, scores
from distillguard.timefmt import epoch_us, utcnow
from tests.clusters.traffic import SECOND, Log, customers, enrol, hydra_traffic

runner = CliRunner()
HYDRA = [f"trial-{i}" for i in range(5)]


def deployment(data_dir: Path) -> None:
    enrol(open_store(data_dir), HYDRA)
    log = Log(data_dir)
    start = epoch_us(utcnow()) - 20 * 60 * SECOND
    hydra_traffic(log, HYDRA, start, rounds=8)
    customers(log, start)
    log.close()


def stored(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        ids = [cid for (cid,) in conn.execute(select(campaigns.c.cluster_id))]
        return {
            cid: {
                a
                for (a,) in conn.execute(
                    select(campaign_members.c.account_id).where(campaign_members.c.cluster_id == cid)
                )
            }
            for cid in ids
        }


def test_clusters_saves_what_it_finds_in_a_data_directory(tmp_path: Path) -> None:
    deployment(tmp_path)
    dry = runner.invoke(app, ["clusters", "--data-dir", str(tmp_path), "--json", "--no-save"])
    assert dry.exit_code == 0, dry.output
    assert stored(open_store(tmp_path).engine) == {}
    result = runner.invoke(app, ["clusters", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    [found] = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert {m["account_id"] for m in found["members"]} == set(HYDRA) and found["links"]
    assert stored(open_store(tmp_path).engine) == {found["cluster_id"]: set(HYDRA)}
    assert "1 campaigns saved in the store" in result.output


def test_analyze_keeps_its_verdicts_and_campaigns_in_a_deployments_store(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    deployment(source)
    events, accounts = tmp_path / "events.jsonl", tmp_path / "accounts.jsonl"
    exported = runner.invoke(
        app, ["events", "export", "-d", str(source), "--out", str(events), "--accounts-out", str(accounts)]
    )
    assert exported.exit_code == 0, exported.output
    verdicts = tmp_path / "verdicts.jsonl"
    args = ["analyze", "--events", str(events), "--accounts", str(accounts), "--out", str(verdicts), "--workers", "1"]
    result = runner.invoke(app, [*args, "--data-dir", str(target)])
    assert result.exit_code == 0, result.output
    assert "saved 17 scores and 1 campaigns in the store" in result.output
    engine = open_store(target).engine
    lines = {v["account_id"]: v for v in map(orjson.loads, verdicts.read_bytes().splitlines())}
    with engine.connect() as conn:
        rows = {a: (r, v) for a, r, v in conn.execute(select(scores.c.account_id, scores.c.risk, scores.c.verdict))}
        history = conn.execute(select(score_history.c.account_id)).all()
    assert rows == {a: (v["risk"], v["verdict"]) for a, v in lines.items()}
    assert len(history) == 17
    [(cluster_id, members)] = stored(engine).items()
    assert members == set(HYDRA) and all(lines[a]["cluster_id"] == cluster_id for a in HYDRA)


def test_a_verdicts_file_that_is_not_one_is_refused_with_the_line_at_fault(tmp_path: Path) -> None:
    verdicts = tmp_path / "v.jsonl"
    verdicts.write_bytes(
        b'{"account_id": "a", "risk": 0.2, "verdict": "allow", "reasons": [], "events": 3}\n{"risk": 1}\n'
    )
    engine = open_store(tmp_path).engine
    with pytest.raises(ValueError, match="verdict 2: missing or malformed field 'account_id'"):
        save_analysis(engine, verdicts, None, utcnow())
    with engine.connect() as conn:
        assert conn.execute(select(scores.c.account_id)).all() == []
