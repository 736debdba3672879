"""Two deployments and a hub on loopback: A finds a campaign and pushes it; B pulls it and flags the same operator's
new accounts sooner; a member without rights sees nothing; forged intel is rejected; a lying member cannot get B's
customers flagged."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from taxii2client.v21 import ApiRoot

from distillguard.config import IntelConfig
from distillguard.detect.signals.template import skeleton
from distillguard.detect.signals.text import window
from distillguard.intel.export import CampaignExporter, ExportPolicy
from distillguard.intel.facts import CampaignFacts, Outsiders
from distillguard.intel.member import load_member
from tests.e2e.conftest import StartGateway
from tests.intel import campaign as world
from tests.support.processes import BIN, Gateway, cli, free_port, invoke, wait_ready

pytestmark = pytest.mark.e2e

FLAGGED = {"throttle", "degrade", "challenge", "block"}
CUSTOMER_PROMPT = "Classify the sentiment of this customer review as positive, negative or neutral.\nReview: {q}"
CUSTOMER_SKELETON = skeleton(window(CUSTOMER_PROMPT.format(q="fine")))
# What a compromised hub does to a stored object: one character of its pattern's first value changed.
TAMPER = "UPDATE hub_objects SET body = replace(body, ?, ?) WHERE object_id = ?"
REVIEWS = ["arrived late but works", "love it", "broke after a week", "fine for the price", "great support team"]


@dataclass
class Hub:
    url: str
    collection: str
    secrets: dict[str, str]
    data: Path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("hub")
    collection = json.loads(invoke("hub", "collection", "create", "campaigns", "--json", data_dir=data))["id"]
    secrets = {}
    for name in ("provider-a", "provider-b", "provider-c", "provider-m"):
        secrets[name] = json.loads(invoke("hub", "member", "add", name, "--json", data_dir=data))["secret"]
    for name in ("provider-a", "provider-b", "provider-m"):
        invoke("hub", "grant", name, "campaigns", "--read", "--write", data_dir=data)
    port = free_port()
    with (data / "hub.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN), "hub", "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/taxii2/", proc)
        yield Hub(f"http://127.0.0.1:{port}/taxii2/api/", collection, secrets, data)
    finally:
        proc.terminate()
        proc.wait(20)


def intel_toml(name: str, member: str, hub: Hub, partners: list[dict[str, Any]], enabled: bool = True) -> str:
    lines = [
        "[intel]",
        f"enabled = {json.dumps(enabled)}",
        f'provider_name = "{name}"',
        f'group_key = "{world.GROUP_KEY}"',
        "pull_interval_s = 0.3",
        "[intel.hub]",
        f'url = "{hub.url}"',
        f'collection = "{hub.collection}"',
        f'username = "{member}"',
        f'password = "{hub.secrets[member]}"',
    ]
    for p in partners:
        lines += ["[[intel.partners]]", *(f"{k} = {json.dumps(v)}" for k, v in p.items())]
    return "\n".join(lines) + "\n"


def keygen(config: Path, data_dir: Path) -> dict[str, Any]:
    text = invoke("intel", "keygen", "--config", str(config), data_dir=data_dir)
    identity = re.search(r'identity = "([^"]+)"', text)
    key = re.search(r'public_key = "([^"]+)"', text)
    assert identity and key
    return {"identity": identity.group(1), "public_key": key.group(1)}


@pytest.fixture(scope="module")
def provider_a(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A: its traffic, its analysis (which finds the campaign), its export and push. Returns A's partner entry."""
    root = tmp_path_factory.mktemp("provider_a")
    config = root / "a.toml"
    config.write_text(intel_toml("Provider A", "provider-a", hub, []))
    data = root / "data"
    with (root / "events.jsonl").open("wb") as f:
        for e in world.events():
            f.write(orjson.dumps(e.to_json()) + b"\n")
    with (root / "accounts.jsonl").open("wb") as f:
        for account in world.accounts().values():
            f.write(orjson.dumps(account.to_json()) + b"\n")
    events, accounts = str(root / "events.jsonl"), str(root / "accounts.jsonl")
    cli("analyze", "-e", events, "--accounts", accounts, "-o", str(root / "v.jsonl"))
    campaigns = [json.loads(line) for line in (root / "v.clusters.jsonl").read_text().splitlines()]
    assert campaigns and all(
        set(m["account_id"] for m in c["members"]) <= set(world.CAMPAIGN_ACCOUNTS) for c in campaigns
    )
    bundle = root / "bundle.json"
    cli(
        "intel",
        "export",
        "--config",
        str(config),
        "--campaigns",
        str(root / "v.clusters.jsonl"),
        "--since",
        "2026-01-01T00:00:00Z",
        "-e",
        events,
        "--accounts",
        accounts,
        "--out",
        str(bundle),
        data_dir=data,
    )
    pushed = json.loads(cli("intel", "push", str(bundle), "--json", "--config", str(config), data_dir=data).stdout)
    assert pushed["total"] == pushed["succeeded"] > 0 and pushed["failures"] == []
    return {"name": "Provider A", **keygen(config, data), "weight": 0.6, "_bundle": bundle, "_data": data}


def partner(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def start_b(start: StartGateway, hub: Hub, partners: list[dict[str, Any]], enabled: bool, tmp: Path) -> Gateway:
    names = [f"b_harvest_{i}" for i in range(4)] + [f"customer_{i}" for i in range(2)]
    accounts: dict[str, list[str]] = {name: [] for name in names}
    gw = start(config=intel_toml("Provider B", "provider-b", hub, partners, enabled), accounts=accounts)
    for i in range(4):
        invoke("accounts", "set", f"b_harvest_{i}", "--payment-fingerprint", world.CARDS[i % 2], data_dir=gw.data_dir)
    for i in range(2):
        invoke("accounts", "set", f"customer_{i}", "--payment-fingerprint", f"card_customer_{i}", data_dir=gw.data_dir)
    return gw


def wait_for_log(gw: Gateway, needle: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in gw.log():
        assert time.monotonic() < deadline, f"gateway never logged {needle!r}"
        time.sleep(0.1)


def verdict_changes(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{") and "verdict changed" in line]


def flagged_at(gw: Gateway) -> dict[str, int]:
    """Per account, its call count when its verdict first became throttle or worse (from the gateway's log)."""
    out: dict[str, int] = {}
    for change in verdict_changes(gw.log()):
        if change["to"] in FLAGGED:
            out.setdefault(change["account_id"], change["events"])
    return out


def harvest(gw: Gateway, account: str, calls: int, seed: int) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys[account], max_retries=0)
    for i in range(calls):
        q = world.QUESTIONS[(seed * 7 + i * 3) % len(world.QUESTIONS)]
        with contextlib.suppress(openai.APIStatusError):  # throttled or degraded: the verdict is what is measured
            client.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": world.TEMPLATES[i % 2].format(q=q)}]
            )
        time.sleep(0.15)  # let the background rescoring see each call on its own


def test_intel_from_a_flags_the_same_operator_at_b_sooner(
    hub: Hub, provider_a: dict[str, Any], start_gateway: StartGateway, tmp_path: Path
) -> None:
    runs = {}
    for enabled in (False, True):
        gw = start_b(start_gateway, hub, [partner(provider_a)], enabled, tmp_path)
        if enabled:
            wait_for_log(gw, '"accounts_matched"')
            deadline = time.monotonic() + 20
            while '"indicators": 0' in gw.log().split("partner intel loaded")[-1][:80]:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for i in range(4):
            harvest(gw, f"b_harvest_{i}", 12, i)
        time.sleep(0.3)
        runs[enabled] = flagged_at(gw)
        log = gw.log()
        gw.stop()
        if enabled:
            assert '"partner_intel"' in log
    without = [runs[False].get(f"b_harvest_{i}", 13) for i in range(4)]
    with_intel = [runs[True][f"b_harvest_{i}"] for i in range(4)]
    # Events until flagged, per account: the issue asks for >= 5x fewer with intel.
    assert sorted(without)[2] >= 5 * sorted(with_intel)[2], (without, with_intel)


def test_a_member_without_rights_sees_nothing(hub: Hub, provider_a: dict[str, Any]) -> None:
    root = ApiRoot(hub.url, user="provider-c", password=hub.secrets["provider-c"])
    assert root.collections == []
    config = provider_a["_data"].parent / "c.toml"
    config.write_text(intel_toml("Provider C", "provider-c", hub, [partner(provider_a)]))
    result = cli("intel", "pull", "--config", str(config), data_dir=config.parent / "c", check=False)
    assert result.returncode == 1 and "404" in result.stderr
    held = cli("intel", "list", "--json", "--config", str(config), data_dir=config.parent / "c").stdout
    assert json.loads(held)["indicators"] == []


def test_forged_and_tampered_objects_are_rejected_and_a_lying_member_cannot_flag_customers(
    hub: Hub, provider_a: dict[str, Any], start_gateway: StartGateway, tmp_path: Path
) -> None:
    m_root = tmp_path / "m"
    m_config = m_root / "m.toml"
    m_root.mkdir()
    m_config.write_text(intel_toml("Provider M", "provider-m", hub, []))
    m_entry = {"name": "Provider M", **keygen(m_config, m_root / "data"), "weight": 1.0}
    m = load_member(IntelConfig(provider_name="Provider M", group_key=world.GROUP_KEY), m_root / "data")
    a_objects = json.loads(provider_a["_bundle"].read_text())["objects"]
    card = next(o for o in a_objects if o["type"] == "indicator" and "payment" in o["name"])
    domain = next(o for o in a_objects if o["type"] == "indicator" and "e-mail" in o["name"])
    # M tries a newer version of A's indicator (the hub refuses: only A adds versions of A's objects), and a new
    # indicator in A's name, signed by M (the hub takes it: it cannot check signatures; B must reject it).
    newer = {**card, "modified": "2026-12-01T00:00:00.000Z"}
    forged = m.signer.sign({**card, "id": "indicator--0d5bb0c2-4c5e-4b9a-9a53-8d1f2f0f5e11"})
    # And M lies: it reports B's customers' cards and their business template as a campaign, signed as itself.
    facts = CampaignFacts("clu_lie", frozenset({"customer_0", "customer_1"}))
    facts.payment_fingerprints = {"card_customer_0", "card_customer_1"}
    facts.templates = {"t": (CUSTOMER_SKELETON, 50)}
    facts.events, facts.first_us, facts.last_us = 100, world.START_US, world.START_US + 10**9
    fake = {"cluster_id": "clu_lie", "verdict": "block", "members": [{"account_id": "customer_0"}]}
    lies = CampaignExporter(m, ExportPolicy(), datetime.now(UTC)).bundle([(fake, facts)], Outsiders(10))
    envelope = m_root / "m.json"
    envelope.write_text(json.dumps({"objects": [newer, forged, *lies["objects"]]}))
    pushed = cli(
        "intel", "push", str(envelope), "--json", "--config", str(m_config), data_dir=m_root / "data", check=False
    )
    status = json.loads(pushed.stdout)
    assert pushed.returncode == 1 and [f["id"] for f in status["failures"]] == [card["id"]]
    assert "another member" in status["failures"][0]["message"]
    # A compromised relay alters A's e-mail-domain indicator in its own database.
    with sqlite3.connect(hub.data / "hub.db") as db:
        db.execute(TAMPER, ("IN ('", "IN ('0", domain["id"]))

    gw = start_b(start_gateway, hub, [partner(provider_a), m_entry], True, tmp_path)
    wait_for_log(gw, "intel objects rejected")
    customers = {
        f"customer_{i}": openai.OpenAI(base_url=gw.base_url, api_key=gw.keys[f"customer_{i}"], max_retries=0)
        for i in range(2)
    }
    for round_ in range(15):
        for client in customers.values():
            reply = client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": CUSTOMER_PROMPT.format(q=REVIEWS[round_ % len(REVIEWS)])}],
            )
            assert reply.choices[0].message.content  # served: never blocked, throttled or challenged
        time.sleep(0.1)
    time.sleep(0.3)
    log = gw.log()
    # The lie put the customers on watch at most (with its reason), never a flag.
    assert not {"customer_0", "customer_1"} & set(flagged_at(gw))
    watched = [
        c for c in verdict_changes(log) if c["account_id"].startswith("customer_") and "partner_intel" in c["reasons"]
    ]
    assert watched and all(c["to"] == "watch" for c in watched)
    # The tampered and the forged objects were rejected at pull and never stored.
    rejected = [json.loads(line) for line in log.splitlines() if line.startswith("{") and "objects rejected" in line]
    assert rejected and sum(r["rejected"] for r in rejected) >= 2
    held = json.loads(
        cli(
            "intel", "list", "--json", "--config", str(gw.data_dir.parent / "distillguard.toml"), data_dir=gw.data_dir
        ).stdout
    )
    ids = {r["indicator"] for r in held["indicators"]}
    assert card["id"] in ids and forged["id"] not in ids and domain["id"] not in ids


def test_reviewers_decisions_go_back_to_the_partner_as_disputes_and_sightings(
    hub: Hub, provider_a: dict[str, Any], start_gateway: StartGateway, tmp_path: Path
) -> None:
    """B's reviewer clears one account A's intel helped flag and confirms another: B disputes the indicators that
    matched the first (here at once, and at the hub) and sights those that matched the second, saying nothing about
    either account."""
    gw = start_b(start_gateway, hub, [partner(provider_a)], True, tmp_path)
    config = str(gw.data_dir.parent / "distillguard.toml")
    wait_for_log(gw, '"accounts_matched"')
    harvest(gw, "b_harvest_0", 12, 0)
    harvest(gw, "b_harvest_1", 12, 1)
    cases: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(cases) < 2:  # the response persists its moves every 0.2 s: poll
        assert time.monotonic() < deadline, f"no case was opened for each flagged account: {cases}"
        listed = json.loads(invoke("review", "list", "--json", data_dir=gw.data_dir))
        cases = {
            c["subject"]["id"]: c["case_id"] for c in listed if c["subject"]["id"] in ("b_harvest_0", "b_harvest_1")
        }
        time.sleep(0.2)
    decide = ["--reason", "our own QA account", "--reviewer", "bob"]
    cli("review", "reverse", cases["b_harvest_0"], *decide, data_dir=gw.data_dir)
    cli(
        "review",
        "confirm",
        cases["b_harvest_1"],
        "--reason",
        "same operator as A reported",
        "--reviewer",
        "bob",
        data_dir=gw.data_dir,
    )
    collection = next(c for c in ApiRoot(hub.url, user="provider-a", password=hub.secrets["provider-a"]).collections)

    def reports() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        objects = collection.get_objects()["objects"]
        return [o for o in objects if o["type"] == "opinion"], [o for o in objects if o["type"] == "sighting"]

    deadline = time.monotonic() + 20
    while not all(reports()):
        assert time.monotonic() < deadline, f"the hub did not get both kinds of report: {gw.log()[-2000:]}"
        time.sleep(0.2)
    held = json.loads(cli("intel", "list", "--json", "--config", config, data_dir=gw.data_dir).stdout)["indicators"]
    disputed = {r["indicator"] for r in held if "(us)" in r["disputed_by"]}
    opinions, sightings = reports()
    # At the hub: one signed dispute per indicator that matched the cleared account (the same ones we no longer use),
    # one sighting per indicator that matched the confirmed one; nothing about the accounts, cases or reasons.
    assert disputed and {o["object_refs"][0] for o in opinions} == disputed
    assert all(o["opinion"] == "strongly-disagree" for o in opinions) and all(s["count"] >= 1 for s in sightings)
    text = json.dumps(opinions + sightings)
    assert not any(secret in text for secret in (*cases, *cases.values(), "QA account", "same operator"))
    # Handled once: the rounds after it (every 0.3 s here) report nothing more.
    time.sleep(1.5)
    assert [len(kind) for kind in reports()] == [len(opinions), len(sightings)]
