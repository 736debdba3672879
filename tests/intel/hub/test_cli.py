"""The `distillguard hub` commands, driven through Typer's runner as users type them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from distillguard.intel.hub.cli import hub_app
from distillguard.intel.hub.store import open_hub_store
from tests.test_cli import leaf_commands

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(hub_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_has_help_with_an_example() -> None:
    commands = leaf_commands(typer.main.get_group(hub_app))
    expected = {("serve",), ("grant",), ("revoke",), ("member", "add"), ("member", "list"), ("member", "remove")}
    expected |= {("collection", "create"), ("collection", "list"), ("root", "add"), ("root", "list")}
    assert set(commands) == expected
    for command in commands:
        assert "Example:" in run(*command, "--help"), command


def test_members_collections_and_rights(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    secret = run("member", "add", "acme", *d).strip()
    assert secret.startswith("dg-hub-") and len(secret.splitlines()) == 1
    collection_id = run("collection", "create", "campaigns", "--title", "Campaigns", *d).strip()
    run("grant", "acme", "campaigns", "--read", *d)
    run("grant", "acme", collection_id, "--write", *d)
    listed = orjson.loads(run("member", "list", "--json", *d))
    assert listed == [
        {"name": "acme", "key_id": secret[7:19], "created_at": listed[0]["created_at"], "rights": {"campaigns": "rw"}}
    ]
    assert secret not in run("member", "list", *d) and secret not in run("member", "list", "--json", *d)
    (collection,) = orjson.loads(run("collection", "list", "--json", *d))
    assert (
        collection["id"] == collection_id
        and collection["title"] == "Campaigns"
        and collection["rights"] == {"acme": "rw"}
    )
    run("revoke", "acme", "campaigns", "--write", *d)
    assert orjson.loads(run("collection", "list", "--json", *d))[0]["rights"] == {"acme": "r"}
    run("revoke", "acme", "campaigns", *d)
    assert orjson.loads(run("collection", "list", "--json", *d))[0]["rights"] == {}
    # The printed secret is the member's credential.
    store = open_hub_store(tmp_path)
    assert store.authenticate("acme", secret) == "acme"
    store.close()
    run("member", "remove", "acme", *d)
    assert orjson.loads(run("member", "list", "--json", *d)) == []


def test_api_roots(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    run("root", "add", "research", "--title", "Research", *d)
    assert [r["name"] for r in orjson.loads(run("root", "list", "--json", *d))] == ["api", "research"]
    created = orjson.loads(run("collection", "create", "papers", "--api-root", "research", "--json", *d))
    assert created["api_root"] == "research"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "ghost", "campaigns", "--read"], "no member 'ghost'"),
        (["grant", "acme", "nowhere", "--read"], "no collection 'nowhere'"),
        (["grant", "acme", "campaigns"], "give --read, --write or both"),
        (["revoke", "acme", "nowhere"], "no collection 'nowhere'"),
        (["member", "remove", "ghost"], "no member 'ghost'"),
        (["member", "add", "acme"], "exists already"),
        (["collection", "create", "x", "--api-root", "nope"], "no API root 'nope'"),
        (["member", "add", "bad name"], "must be 1 to 64"),
    ],
)
def test_errors_are_messages_with_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    d = ["--data-dir", str(tmp_path)]
    run("member", "add", "acme", *d)
    run("collection", "create", "campaigns", *d)
    result = runner.invoke(hub_app, [*args, *d])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
