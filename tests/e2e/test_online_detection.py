"""Online detection in a real gateway: signals stored with every event, verdicts reaching the account's next calls."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import openai
import pytest

from distillguard.demo import harvest_prompt
from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway

pytestmark = pytest.mark.e2e

CASUAL = [
    "hey, any tips for a first trip to Lisbon?",
    "what's a quick vegetarian dinner I can cook tonight",
    "can you explain what a Roth IRA is, simply",
    "write a short birthday message for my sister",
]


FLAGGED = {"throttle", "degrade", "challenge", "block"}


def test_a_harvester_is_flagged_while_a_casual_user_is_not(start_gateway: StartGateway) -> None:
    # Detection alone: the response records what it would do and changes nothing (tests/e2e/test_response.py acts).
    gw = start_gateway(config='[respond]\nmode = "shadow"\n', accounts={"harvester": [], "casual": []})
    rng = random.Random(3)
    harvester = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["harvester"], max_retries=0)
    casual = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["casual"], max_retries=0)

    def harvest() -> None:
        harvester.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": harvest_prompt(rng)}], max_tokens=64
        )

    for i in range(150):
        harvest()
        if i % 5 == 0:
            casual.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": rng.choice(CASUAL)}], max_tokens=64
            )
    # Rescoring runs in the background (the first model prediction can take a while on a loaded machine): wait
    # until the gateway has logged the harvester's flag, then make the call that must carry it. The wait ends as
    # soon as the flag is logged; its bound (under the test timeout) is generous: a loaded CI run needed over 30 s.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        c["account_id"] == "harvester" and c["to"] in FLAGGED for c in verdict_changes(gw)
    ):
        time.sleep(0.1)
    harvest()
    by_account: dict[str, list[dict[str, Any]]] = {}
    for event in gw.events():
        by_account.setdefault(event["account_id"], []).append(event)

    # Every call's signals are stored with its event.
    first = by_account["harvester"][0]["signals"]
    assert first["cot"] is not None and first["template_id"] and first["version"] >= 1
    assert all(e["signals"]["cot"] is None for e in by_account["casual"])

    # The verdict reached the harvester's next call (noted in its event); the casual user is never flagged.
    last = by_account["harvester"][-1]["extra"] or {}
    assert last.get("verdict") in FLAGGED
    assert last["response"]["applied"] is False and last["response"]["why"] == "shadow"
    assert not any((e["extra"] or {}).get("verdict") in FLAGGED for e in by_account["casual"])

    changes = verdict_changes(gw)
    flagged = [c for c in changes if c["account_id"] == "harvester" and c["to"] in FLAGGED]
    # Every flag carries its reasons: the CoT rule, or the learned model when it alone is confident (which of the
    # two comes first depends on when the background rescoring ran).
    assert flagged and all({"cot_elicitation", "learned_model"} & set(c["reasons"]) for c in flagged)
    assert not any(c["account_id"] == "casual" and c["to"] in FLAGGED for c in changes)


def verdict_changes(gw: Gateway) -> list[dict[str, Any]]:
    """The verdict changes the gateway has logged so far."""
    return [json.loads(line) for line in gw.log().splitlines() if line.startswith("{") and "verdict changed" in line]
