"""State on PostgreSQL, end to end: keys made with the CLI work through a real gateway (official SDK), the gateway
rides out a PostgreSQL restart and an outage (failing only the calls that needed the database while it was down, in
the API's error format), and what it writes afterwards is in the database for the CLI to read."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import create_engine

from distillguard.store import migrate
from tests.conftest import postgres_server
from tests.e2e.conftest import StartGateway
from tests.e2e.test_response import CONFIG, harvest
from tests.support.processes import Gateway, cli
from tests.support.servers import Postgres

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[Postgres]:
    """A server of its own (the test restarts it), named to the gateway and the CLI by DISTILLGUARD_STORE_URL."""
    with postgres_server() as server:
        # The environment rather than the file: the test config's extra text lands inside a table, and store_url is
        # a top-level key. The gateway and every CLI call here inherit it.
        monkeypatch.setenv("DISTILLGUARD_STORE_URL", server.url)
        yield server


def dg(gw: Gateway, *args: str) -> Any:
    """A CLI command against the gateway's configuration (so, its PostgreSQL), its JSON output."""
    result = cli(*args, "--config", str(gw.data_dir.parent / "distillguard.toml"), data_dir=gw.data_dir)
    return json.loads(result.stdout)


def chat(gw: Gateway, key: str) -> str:
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="mock-reasoner", messages=[{"role": "user", "content": "hello"}])
    return str(reply.choices[0].message.content)


def new_key(gw: Gateway, account: str) -> str:
    return str(dg(gw, "keys", "create", "--account", account, "--json")["key"])


def test_the_gateway_keeps_its_state_on_postgresql_across_a_restart(pg: Postgres, start_gateway: StartGateway) -> None:
    gw = start_gateway(config=CONFIG % "enforce", accounts={"customer": ["--org", "acme"], "harvester": []})
    assert chat(gw, gw.keys["customer"])
    # Keys and accounts live in PostgreSQL, not in the data dir.
    assert not (gw.data_dir / "state.db").exists()
    assert {k["account_id"] for k in dg(gw, "keys", "list", "--json")} == {"customer", "harvester"}
    assert dg(gw, "accounts", "set", "customer", "--country", "FR")["country"] == "FR"
    engine = create_engine(pg.url)
    assert migrate.current(engine) == migrate.head()
    engine.dispose()

    # A restart drops every connection the gateway holds: the next calls get fresh ones. A key made after the
    # restart is not in the gateway's key cache, so its call reads the database.
    pg.restart()
    after_restart = new_key(gw, "late")
    assert chat(gw, after_restart) and chat(gw, gw.keys["customer"])

    # An outage: a call that needs the database fails in the API's own format (no stack trace), and service is
    # back as soon as the server is.
    unseen = new_key(gw, "unseen")
    pg.stop()
    with pytest.raises(openai.APIStatusError) as outage:
        chat(gw, unseen)
    assert outage.value.status_code >= 500
    assert isinstance(outage.value.body, dict) and outage.value.body.get("message")
    assert "Traceback" not in outage.value.response.text
    pg.start()
    assert chat(gw, unseen)

    # The response written after the restarts is in the database: a harvester's moves, a case to review.
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["harvester"], max_retries=0)
    rng = random.Random(5)
    seen = [harvest(client, rng)[0] for _ in range(40)]
    assert "throttled" in seen or "degraded" in seen, seen
    cases: list[dict[str, Any]] = []
    for _ in range(100):  # the gateway persists moves every 0.2 s; poll, do not time
        cases = dg(gw, "review", "list", "--json")
        if cases:
            break
        time.sleep(0.1)
    assert [c["subject"]["id"] for c in cases] == ["harvester"]
    shown = dg(gw, "review", "show", cases[0]["case_id"], "--json")
    assert shown["standings"][0]["level"] in ("degrade", "block")
    assert dg(gw, "review", "audit", "--json")  # the trail, read back from PostgreSQL


def test_cli_commands_on_postgresql_need_no_data_dir_state(pg: Postgres, tmp_path: Path) -> None:
    config = tmp_path / "distillguard.toml"
    config.write_text("")
    d = tmp_path / "data"
    common = ("--config", str(config))
    created = json.loads(cli("keys", "create", "--account", "a", "--json", *common, data_dir=d).stdout)
    listed = json.loads(cli("keys", "list", "--json", *common, data_dir=d).stdout)
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    shown = json.loads(cli("accounts", "set", "a", "--verified", *common, data_dir=d).stdout)
    assert shown["verified"] is True
    assert json.loads(cli("review", "list", "--json", *common, data_dir=d).stdout) == []
    assert not (d / "state.db").exists()
