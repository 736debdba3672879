"""The clustering job in `serve`: a hydra's traffic through a real gateway becomes a stored campaign with one campaign
case; with two gateways on one data directory, only one runs the job, and the other takes over when it stops."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.e2e.conftest import StartGateway
from tests.support.processes import BIN, Gateway, free_port, invoke, wait_ready

pytestmark = pytest.mark.e2e

HYDRA = [f"trial-{i}" for i in range(5)]
CUSTOMERS = ["acme", "globex"]
CONFIG = """
[clusters]
interval_s = {interval}
niceness = 0
"""
TASKS = ["integrate x^2 sin x", "implement an LRU cache", "explain adverse possession", "explain the Krebs cycle"]


def hydra_request(rng: random.Random) -> dict[str, object]:
    """One operator's recipe: its system prompt, reasoning harvested in <think> tags, broad always-new items."""
    task = f"{rng.choice(TASKS)}, item {rng.randrange(1_000_000)}"
    return {
        "model": "mock-gpt",
        "max_tokens": 384,
        "messages": [
            {"role": "system", "content": "You are a careful expert tutor. Never skip a step."},
            {
                "role": "user",
                "content": "<think> Reason inside these tags through every step before answering. </think> "
                f"Then give the final answer. Task: {task}",
            },
        ],
    }


def customer_request(rng: random.Random) -> dict[str, object]:
    prompt = rng.choice(["Translate to German: your order has shipped.", "Summarise: my invoice shows two charges."])
    return {"model": "mock-gpt", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}


async def traffic(gw: Gateway, rounds: int) -> None:
    """The hydra's accounts call in sync, round after round; the customers call at their own pace."""
    rng = random.Random(7)
    clients = {a: openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys[a], max_retries=5) for a in gw.keys}
    for _ in range(rounds):
        calls = [clients[a].chat.completions.create(**hydra_request(rng)) for a in HYDRA]  # type: ignore[call-overload]
        calls += [clients[a].chat.completions.create(**customer_request(rng)) for a in CUSTOMERS]  # type: ignore[call-overload]
        await asyncio.gather(*calls)
        await asyncio.sleep(0.2)
    for client in clients.values():
        await client.close()


def metric(gw: Gateway, name: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).rsplit(" ", 1)[1])


def eventually(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)


def stored_campaigns(data_dir: Path) -> dict[str, tuple[str, set[str]]]:
    with sqlite3.connect(data_dir / "state.db") as db:
        rows = db.execute("SELECT cluster_id, verdict FROM campaigns").fetchall()
        members = db.execute("SELECT cluster_id, account_id FROM campaign_members").fetchall()
    return {cid: (verdict, {a for c, a in members if c == cid}) for cid, verdict in rows}


def campaign_cases(data_dir: Path) -> list[dict[str, Any]]:
    listed = invoke("review", "list", "--json", data_dir=data_dir)
    return [c for c in orjson.loads(listed) if c["subject"]["kind"] == "campaign"]


def test_a_hydra_through_the_gateway_becomes_a_stored_campaign_with_one_case(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        CONFIG.format(interval=2), accounts={**{a: ["--tier", "free"] for a in HYDRA}, **{c: [] for c in CUSTOMERS}}
    )
    config = str(gw.data_dir.parent / "distillguard.toml")
    for account in HYDRA:
        invoke("accounts", "set", account, "--payment-fingerprint", "card-5c1f9e",
               "--email-domain", "quickmail.example", "--config", config, data_dir=gw.data_dir)  # fmt: skip
    asyncio.run(traffic(gw, rounds=8))

    def caught() -> bool:
        return any(members == set(HYDRA) for _, members in stored_campaigns(gw.data_dir).values())

    eventually(caught)
    [(cluster_id, verdict)] = [(c, v) for c, (v, m) in stored_campaigns(gw.data_dir).items() if m == set(HYDRA)]
    assert verdict in ("degrade", "challenge", "block")
    eventually(lambda: len(campaign_cases(gw.data_dir)) == 1)
    [case] = campaign_cases(gw.data_dir)
    assert case["subject"] == {"kind": "campaign", "id": cluster_id} and set(case["members"]) == set(HYDRA)
    assert case["status"] == "open" and case["applied"] == "degrade"
    assert metric(gw, "distillguard_clustering_runner") == 1
    assert metric(gw, "distillguard_clustering_cases_opened_total") == 1
    # Runs go on; the open case is not opened again, and the customers are in no campaign case.
    runs = metric(gw, "distillguard_clustering_runs_total")
    eventually(lambda: metric(gw, "distillguard_clustering_runs_total") >= runs + 1)
    assert len(campaign_cases(gw.data_dir)) == 1 and metric(gw, "distillguard_clustering_failures_total") == 0
    assert not any(set(CUSTOMERS) & m for _, m in stored_campaigns(gw.data_dir).values() if m == set(HYDRA))
    # The scores the gateway wrote for the console are there too.
    with sqlite3.connect(gw.data_dir / "state.db") as db:
        scored = {a for (a,) in db.execute("SELECT account_id FROM scores")}
    assert set(HYDRA) | set(CUSTOMERS) <= scored


def test_one_gateway_per_data_directory_runs_the_job_and_another_takes_over(start_gateway: StartGateway) -> None:
    first = start_gateway(CONFIG.format(interval=1))
    config = first.data_dir.parent / "distillguard.toml"
    port = free_port()
    log = (first.data_dir.parent / "second.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--config", str(config), "--data-dir", str(first.data_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DISTILLGUARD_LOGGING__LEVEL": "INFO"},
        start_new_session=True,
    )
    second = Gateway(proc, port, first.data_dir, first.data_dir.parent / "second.log")
    try:
        wait_ready(f"{second.url}/healthz", proc)
        eventually(lambda: metric(first, "distillguard_clustering_runs_total") >= 1)
        assert metric(first, "distillguard_clustering_runner") == 1
        assert metric(second, "distillguard_clustering_runner") == 0
        assert metric(second, "distillguard_clustering_runs_total") == 0
        assert "another process runs the campaign clustering job" in second.log()
        first.stop()
        eventually(lambda: metric(second, "distillguard_clustering_runs_total") >= 1)
        assert metric(second, "distillguard_clustering_runner") == 1
    finally:
        second.stop()
        log.close()
