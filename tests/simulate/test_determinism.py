"""Reproducibility, seeds, scaling, progress reporting and the population mix override."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from distillguard.simulate import POPULATIONS, SimulationConfig, simulate, writer
from distillguard.simulate.engine import allocate
from tests.simulate.conftest import read_jsonl

SMALL = SimulationConfig(accounts=80, days=1.0, seed=3, attack_share=0.2, events_scale=0.3)
FILES = ("events.jsonl", "accounts.jsonl", "labels.jsonl")


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in FILES}


def test_same_config_gives_byte_identical_files(tmp_path: Path) -> None:
    first = simulate(SMALL, tmp_path / "a")
    second = simulate(SMALL, tmp_path / "b")
    assert first.events == second.events > 100
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


def test_output_does_not_depend_on_the_process(tmp_path: Path) -> None:
    """Fresh interpreters with different hash seeds write the same bytes (no set/dict-order or hash() leaks)."""
    script = (
        "import sys; from pathlib import Path; from distillguard.simulate import SimulationConfig, simulate; "
        "simulate(SimulationConfig(accounts=60, days=1.0, seed=3, attack_share=0.2, events_scale=0.3), "
        "Path(sys.argv[1]))"
    )
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / hash_seed)], check=True, env=env, timeout=120)
    assert _bytes(tmp_path / "1") == _bytes(tmp_path / "2")


def test_different_seeds_give_different_traffic(tmp_path: Path) -> None:
    simulate(SMALL, tmp_path / "a")
    simulate(replace(SMALL, seed=4), tmp_path / "b")
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    assert a["events.jsonl"] != b["events.jsonl"]
    ids_a = {r["account_id"] for r in read_jsonl(tmp_path / "a" / "accounts.jsonl")}
    ids_b = {r["account_id"] for r in read_jsonl(tmp_path / "b" / "accounts.jsonl")}
    assert not ids_a & ids_b


def test_events_scale_scales_traffic_not_accounts(tmp_path: Path) -> None:
    base = SimulationConfig(accounts=120, days=1.0, seed=5)
    one = simulate(base, tmp_path / "one")
    two = simulate(replace(base, events_scale=2.0), tmp_path / "two")
    assert 1.5 < two.events / one.events < 2.6
    assert (tmp_path / "one" / "accounts.jsonl").read_bytes() == (tmp_path / "two" / "accounts.jsonl").read_bytes()


def test_progress_reports_increasing_counts_ending_at_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "PROGRESS_EVERY", 1000)
    seen: list[int] = []
    result = simulate(SimulationConfig(accounts=150, days=1.0, seed=1), tmp_path, progress=seen.append)
    assert len(seen) >= 5
    assert seen == sorted(seen)
    assert seen[-1] == result.events
    assert sum(1 for _ in (tmp_path / "events.jsonl").open("rb")) == result.events


def test_partial_days_and_an_odd_start(tmp_path: Path) -> None:
    start = datetime(2026, 11, 3, 13, 37, 5, tzinfo=UTC)
    config = SimulationConfig(accounts=60, days=0.4, seed=8, start=start, attack_share=0.3)
    result = simulate(config, tmp_path)
    assert result.events > 0
    stamps = [e["ts"] for e in read_jsonl(tmp_path / "events.jsonl")]
    end = start + timedelta(days=0.4)
    assert all(start <= datetime.fromisoformat(ts.replace("Z", "+00:00")) < end for ts in stamps)


def test_population_override(tmp_path: Path) -> None:
    only_hydra = SimulationConfig(accounts=40, days=0.5, seed=2, populations={"hydra_campaign": 1.0})
    result = simulate(only_hydra, tmp_path)
    assert result.populations == {"hydra_campaign": 40}
    assert result.attack_accounts == 40
    labels = read_jsonl(tmp_path / "labels.jsonl")
    assert all(r["population"] == "hydra_campaign" and r["campaign_id"] for r in labels)

    mixed = allocate(
        SimulationConfig(accounts=100, attack_share=0.1, populations={"casual_chat": 1, "cot_harvester": 3})
    )
    assert mixed["casual_chat"] == 90 and mixed["cot_harvester"] == 10
    assert sum(mixed.values()) == 100
    with pytest.raises(ValueError, match="unknown populations"):
        allocate(SimulationConfig(populations={"nobody": 1.0}))


def test_default_allocation_covers_every_population() -> None:
    counts = allocate(SimulationConfig())
    assert sum(counts.values()) == 1000
    assert sum(n for p, n in counts.items() if POPULATIONS[p].label == "attack") == 80
    assert all(n > 0 for n in counts.values())


@pytest.mark.parametrize(
    "bad",
    [{"accounts": 0}, {"days": 0}, {"attack_share": 1.5}, {"events_scale": 0}],
)
def test_config_validation(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        SimulationConfig(**bad)  # type: ignore[arg-type]
