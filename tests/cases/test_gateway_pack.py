"""An evidence pack about what a real gateway recorded: a harvester driven to a block through the official SDK,
then `distillguard case export` and `case verify` run as commands against the gateway's data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import StartGateway
from tests.e2e.test_response import CONFIG, run_until_blocked
from tests.support.processes import cli

pytestmark = pytest.mark.e2e


def test_a_pack_about_a_blocked_harvester_from_a_live_gateway(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = start_gateway(config=CONFIG % "enforce", accounts={"harvester": [], "app": []})
    seen, blocked, _ = run_until_blocked(gw)
    assert seen[-1] == "blocked", seen
    case_id = blocked.body["message"].split("Case reference: ")[1].split(".")[0]

    pack = tmp_path / "pack"
    made = cli("case", "export", "--account", "harvester", "--out", str(pack), "--json", data_dir=gw.data_dir)
    assert json.loads(made.stdout)["accounts"] == 1
    checked = cli("case", "verify", str(pack), data_dir=gw.data_dir, check=False)
    assert checked.returncode == 0 and "signed by the deployment's key" in checked.stdout, checked.stdout

    doc = json.loads((pack / "case.json").read_text())
    [account] = doc["accounts"]
    assert account["standing"]["level"] == "block" and account["standing"]["case_id"] == case_id
    assert account["traffic"]["calls"] == len(seen) and account["traffic"]["refused"] >= 1
    assert case_id in [c["case_id"] for c in doc["cases"]]
    moves = [(e["detail"].get("from"), e["detail"].get("to")) for e in doc["audit"]["entries"] if e["account_id"]]
    assert ("degrade", "block") in moves and all(e["hash_ok"] for e in doc["audit"]["entries"])
    assert doc["audit"]["live_chain"]["whole"]
    # Sample exchanges: the harvester's chain-of-thought requests, found by their stored signals, with the address
    # reduced to its network.
    assert doc["exchanges"] and any(x["chosen"] == "extraction-like" for x in doc["exchanges"])
    assert all(x["client"]["ip"] in (None, "127.0.0.0/24") for x in doc["exchanges"])
    found = [x for x in doc["exchanges"] if x["chosen"] == "extraction-like"]
    assert all(any(s.startswith("cot") for s in x["extraction_signals"]) for x in found)
