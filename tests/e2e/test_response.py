"""Graded response in a real gateway, through the official SDK: a harvester is throttled, degraded, then blocked,
while a business app with the same volume is untouched; a reversal restores service at once; shadow mode changes
nothing the client sees; every transition is in the audit trail."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import openai
import pytest

from distillguard.demo import harvest_prompt
from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway, cli

pytestmark = pytest.mark.e2e

# Rules-only scoring and close thresholds: the harvester's risk climbs through every level within ~25 calls
# (0.31 at 13 calls, 0.52 at 20, 0.62 from 25 on), and every call is rescored within 5 ms.
CONFIG = """
[detect]
model = "rules"
rescore_every = 1
flush_interval_ms = 5
thresholds = {watch = 0.2, throttle = 0.3, degrade = 0.5, block = 0.6}

[respond]
mode = "%s"
min_hold_s = 0
sync_interval_s = 0.2
[respond.review]
automatic_up_to = "block"
open_case_at = "degrade"
[respond.throttle]
requests = ["45/minute"]
tokens = ["1000000/minute"]
"""
BUSINESS = [
    "Summarise this support ticket in one line: customer cannot reset password after the update.",
    "Draft a polite reply to a customer asking about the delivery date of order 4411.",
    "Classify the sentiment of this review: 'Fast shipping, but the box was damaged.'",
    "Extract the invoice number and total from: Invoice INV-2291, total due 418.20 EUR.",
    "Translate to German: Your subscription renews on the first of next month.",
]


def harvest(client: openai.OpenAI, rng: random.Random) -> tuple[str, Any]:
    """One harvesting call (CoT prompt, reasoning model, log-probabilities); what the client saw of the response."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-reasoner",
            messages=[{"role": "user", "content": harvest_prompt(rng)}],
            max_tokens=64,
            logprobs=True,
            top_logprobs=3,
        )
    except openai.PermissionDeniedError as err:
        return "blocked", err
    completion = raw.parse()
    message = completion.choices[0].message
    if getattr(message, "reasoning_content", None) is None and completion.choices[0].logprobs is None:
        return "degraded", completion
    if raw.headers.get("x-ratelimit-limit-requests") == "45":
        return "throttled", completion
    return "full", completion


def business(client: openai.OpenAI, rng: random.Random) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="mock-reasoner",
        messages=[
            {"role": "system", "content": "You are the support assistant of Acme Parcel."},
            {"role": "user", "content": rng.choice(BUSINESS)},
        ],
        max_tokens=64,
    )


def admin(gw: Gateway) -> httpx.Client:
    out = cli("admin", "token", "create", "--name", "alice", data_dir=gw.data_dir)
    token = next(w for w in out.stdout.split() if w.startswith("dg-admin-"))
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {token}"})


def run_until_blocked(gw: Gateway, calls: int = 80) -> tuple[list[str], Any, list[Any]]:
    rng = random.Random(5)
    harvester = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["harvester"], max_retries=0)
    app = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["app"], max_retries=0)
    seen: list[str] = []
    business_replies = []
    last: Any = None
    for _ in range(calls):
        state, last = harvest(harvester, rng)
        seen.append(state)
        business_replies.append(business(app, rng))
        if state == "blocked":
            break
        time.sleep(0.02)
    return seen, last, business_replies


def test_a_harvester_is_throttled_degraded_then_blocked_and_a_reversal_restores_it(
    start_gateway: StartGateway,
) -> None:
    gw = start_gateway(config=CONFIG % "enforce", accounts={"harvester": [], "app": []})
    seen, blocked, business_replies = run_until_blocked(gw)

    # The levels came in order, each seen by the client, and the harvester ends blocked with a case to quote.
    order = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert order == ["full", "throttled", "degraded", "blocked"], seen
    assert blocked.status_code == 403 and blocked.code == "account_blocked"
    case_id = blocked.body["message"].split("Case reference: ")[1].split(".")[0]
    assert case_id.startswith("case_")

    # The business app sent as many calls and was never touched: reasoning and full limits every time.
    for reply in business_replies:
        assert reply.http_response.status_code == 200
        assert reply.parse().choices[0].message.reasoning_content
        assert reply.headers["x-ratelimit-limit-requests"] != "45"

    # Streamed calls are degraded too: the harvester's streams carried no reasoning while it was degraded.
    events = gw.events()
    harvester_events = [e for e in events if e["account_id"] == "harvester"]
    degraded = [e for e in harvester_events if (e["extra"] or {}).get("response", {}).get("level") == "degrade"]
    assert degraded and all("logprobs_dropped" in e["extra"]["response"]["degraded"] for e in degraded)
    assert all("reasoning_dropped" in e["extra"]["response"]["degraded"] for e in degraded)
    assert not any((e["extra"] or {}).get("response") for e in events if e["account_id"] == "app")

    # A reviewer reverses the case: the very next call is served in full.
    with admin(gw) as http:
        reply = http.post(f"/admin/v1/cases/{case_id}/reverse", json={"reason": "evaluation partner, verified"})
        assert reply.status_code == 200 and reply.json()["status"] == "reversed"
        harvester = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["harvester"], max_retries=0)
        state, _ = harvest(harvester, random.Random(9))
        assert state == "full"

        # Every transition is in the audit trail, with who and why.
        entries = http.get("/admin/v1/audit", params={"limit": 1000}).json()["data"]
        mine = [e for e in entries if e["account_id"] == "harvester" or e["case_id"] == case_id]
        moves = [(e["detail"].get("from"), e["detail"].get("to")) for e in mine if e["action"].startswith("level_")]
        assert moves == [
            ("allow", "watch"),
            ("watch", "throttle"),
            ("throttle", "degrade"),
            ("degrade", "block"),
            ("block", "allow"),  # the reversal
        ]
        actions = [e["action"] for e in mine]
        assert "case_opened" in actions and "case_reversed" in actions
        reversal = next(e for e in mine if e["action"] == "case_reversed")
        assert reversal["actor"] == "reviewer:alice" and reversal["detail"]["reason"] == "evaluation partner, verified"
        assert http.get("/admin/v1/audit/verify").json()["intact"] is True


def test_shadow_mode_changes_nothing_the_client_sees(start_gateway: StartGateway) -> None:
    gw = start_gateway(config=CONFIG % "shadow", accounts={"harvester": [], "app": []})
    seen, _, _ = run_until_blocked(gw, calls=40)
    assert set(seen) == {"full"}
    # What would have happened is recorded: the harvester reached block in the log, nothing applied.
    responses = [
        e["extra"]["response"]
        for e in gw.events()
        if e["account_id"] == "harvester" and (e["extra"] or {}).get("response")
    ]
    assert responses and all(r["applied"] is False and r["why"] == "shadow" for r in responses)
    assert responses[-1]["level"] == "block"


def test_streams_of_a_degraded_account_carry_no_reasoning(start_gateway: StartGateway) -> None:
    config = (CONFIG % "enforce").replace('automatic_up_to = "block"', 'automatic_up_to = "degrade"')
    gw = start_gateway(config=config, accounts={"harvester": [], "app": []})
    rng = random.Random(5)
    harvester = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["harvester"], max_retries=0)
    for _ in range(60):
        state, _ = harvest(harvester, rng)
        if state == "degraded":
            break
        time.sleep(0.02)
    assert state == "degraded"
    stream = harvester.chat.completions.create(
        model="mock-reasoner",
        messages=[{"role": "user", "content": harvest_prompt(rng)}],
        max_tokens=64,
        stream=True,
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert "".join(d.content or "" for d in deltas)  # the answer itself arrives
    assert not any(getattr(d, "reasoning_content", None) for d in deltas)
    last = [e for e in gw.events() if e["account_id"] == "harvester"][-1]
    assert last["stream"] and "reasoning_dropped" in last["extra"]["response"]["degraded"]
