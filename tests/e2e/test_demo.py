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


def test_the_demo_flags_and_degrades_the_harvester_only(tmp_path: Path) -> None:
    out = io.StringIO()
    populations = asyncio.run(run_demo(tmp_path / "dg", 12, free_port(), Console(file=out, width=200)))
    by_name = {p.name: p for p in populations}
    harvester = by_name["harvester"]
    assert harvester.outcomes["degraded"] > 0 and harvester.outcomes["429 rate limited"] > 0
    for name in ("business app", "evaluation run"):
        outcomes = by_name[name].outcomes
        assert outcomes["200 ok"] > 0 and outcomes["degraded"] == 0 and outcomes["403 refused"] == 0
    assert by_name["stolen key"].outcomes["401 bad key"] > 0
    table = out.getvalue()
    assert "cot_elicitation" in table and "degrade (review: block)" in table
