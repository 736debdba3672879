"""`make demo` shows detection and response working: the harvester is flagged and degraded, customers pass."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from distillguard.demo import run_demo
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


def test_the_demo_flags_and_acts_on_the_harvester_only(tmp_path: Path) -> None:
    out = io.StringIO()
    populations = asyncio.run(run_demo(tmp_path / "dg", 15, free_port(), Console(file=out, width=200)))
    by_name = {p.name: p for p in populations}
    harvester = by_name["harvester"]
    # Held to its limits and flagged; how far the response got within 15 s depends on the machine's load.
    assert harvester.outcomes["429 rate limited"] > 0
    for name in ("business app", "evaluation run"):
        outcomes = by_name[name].outcomes
        assert outcomes["200 ok"] > 0 and outcomes["degraded"] == 0 and outcomes["403 refused"] == 0
    assert by_name["stolen key"].outcomes["401 bad key"] > 0
    table = out.getvalue()
    final = table[table.rindex("(0s left)") :]
    harvester_row = next(line for line in final.splitlines() if "harvester" in line)
    assert "cot_elicitation" in harvester_row
    assert "throttle" in harvester_row or "degrade" in harvester_row
