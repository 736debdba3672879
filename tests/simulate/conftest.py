"""One small simulated run shared by the tests (procedural content only: no corpus needed)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.simulate import SimulationConfig, SimulationResult, simulate

# Enough accounts that every population is present (a quarter attackers), a span that crosses the release.
RUN = SimulationConfig(accounts=300, days=3.0, seed=7, attack_share=0.25, events_scale=0.5)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle]


@dataclass
class Run:
    config: SimulationConfig
    result: SimulationResult
    events: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    labels: list[dict[str, Any]]

    def population_of(self, account_id: str) -> str:
        return str(self.label_by_id[account_id]["population"])

    def __post_init__(self) -> None:
        self.label_by_id = {r["account_id"]: r for r in self.labels}
        self.account_by_id = {r["account_id"]: r for r in self.accounts}
        self.by_population: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            self.by_population[self.population_of(event["account_id"])].append(event)
            self.by_account[event["account_id"]].append(event)

    def accounts_of(self, population: str) -> list[str]:
        return [r["account_id"] for r in self.labels if r["population"] == population]


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sim")
    result = simulate(RUN, out)
    return Run(
        RUN,
        result,
        read_jsonl(out / "events.jsonl"),
        read_jsonl(out / "accounts.jsonl"),
        read_jsonl(out / "labels.jsonl"),
    )


def prompt_text(event: dict[str, Any]) -> str:
    """All the text a call sent (messages joined, or the completions prompt)."""
    request = event["request"]
    if "messages" in request:
        return "\n".join(str(m.get("content") or "") for m in request["messages"])
    return str(request.get("prompt", ""))


def user_text(event: dict[str, Any]) -> str:
    """The last user message (or the completions prompt)."""
    request = event["request"]
    if "messages" in request:
        return str([m for m in request["messages"] if m["role"] == "user"][-1]["content"])
    return str(request.get("prompt", ""))
