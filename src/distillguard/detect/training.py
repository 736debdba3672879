"""``distillguard train``: fit the risk model on labelled simulated traffic and save the versioned artefact.

Each account contributes feature snapshots taken as its history grows (after 5, 10, 20, ... events and at the
end), so the model learns to judge accounts early, which is when the gateway has to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillguard.detect.analyze import AnalyzeReport, load_accounts, read_rows
from distillguard.detect.evaluate import BENIGN, read_labels
from distillguard.detect.features import AccountState, ModelClock
from distillguard.detect.model import RiskModel

SNAPSHOTS = frozenset({5, 10, 20, 40, 80, 160, 320, 640, 1280})


@dataclass
class TrainingSet:
    X: np.ndarray
    y: np.ndarray
    accounts: int


def snapshots(data_dir: Path, progress: Callable[[int], None] | None = None) -> TrainingSet:
    """Feature snapshots of every labelled account of one simulated run (events.jsonl, accounts.jsonl, labels)."""
    labels = read_labels(data_dir / "labels.jsonl")
    info = load_accounts(data_dir / "accounts.jsonl" if (data_dir / "accounts.jsonl").exists() else None)
    rows = read_rows(data_dir / "events.jsonl", "native", AnalyzeReport(), progress=progress)
    rows.sort(key=lambda r: r[0])
    clock = ModelClock()
    states: dict[str, AccountState] = {}
    X: list[list[float]] = []
    y: list[int] = []
    for ts_us, account_id, status, prompt_tokens, completion_tokens, model, signals, _ in rows:
        state = states.get(account_id)
        if state is None:
            state = states[account_id] = AccountState()
            meta = info.get(account_id)
            if meta is not None:
                meta.apply(state)
        state.update(ts_us, signals, status, prompt_tokens, completion_tokens, model, clock.observe(model, ts_us))
        if state.events in SNAPSHOTS and account_id in labels:
            X.append(state.vector())
            y.append(int(labels[account_id].label != BENIGN))
    for account_id, state in states.items():
        if account_id in labels and state.events not in SNAPSHOTS:
            X.append(state.vector())
            y.append(int(labels[account_id].label != BENIGN))
    return TrainingSet(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), len(states))


def train(data_dirs: Sequence[Path], out: Path, version: str = "risk-v1") -> tuple[RiskModel, int, int]:
    """Fit on all runs; returns the model, the number of snapshots and of attack snapshots."""
    sets = [snapshots(d) for d in data_dirs]
    X = np.vstack([s.X for s in sets])
    y = np.concatenate([s.y for s in sets])
    model = RiskModel(version=version).fit(X, y)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return model, len(y), int(y.sum())
