"""The CLI as users type it (Typer's runner drives the same functions the console script runs)."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from distillguard.cli import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_lifecycle(tmp_path: Path) -> None:
    d = str(tmp_path)
    created = orjson.loads(
        run("keys", "create", "--data-dir", d, "--account", "acme", "--org", "o", "--tier", "free", "--json")
    )
    assert created["key"].startswith("sk-dg-") and created["account_id"] == "acme"
    listed = orjson.loads(run("keys", "list", "--data-dir", d, "--json"))
    assert [k["key_id"] for k in listed] == [created["key_id"]] and listed[0]["revoked_at"] is None
    assert created["key"] not in run("keys", "list", "--data-dir", d)
    run("keys", "revoke", "--data-dir", d, created["key_id"])
    assert orjson.loads(run("keys", "list", "--data-dir", d, "--json"))[0]["revoked_at"] is not None


def test_plain_key_output_is_the_key_alone_on_stdout(tmp_path: Path) -> None:
    out = run("keys", "create", "--data-dir", str(tmp_path), "--account", "a")
    assert out.strip().startswith("sk-dg-") and len(out.strip().splitlines()) == 1


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--data-dir", str(tmp_path), "--account", "a", "--tier", "gold"])
    assert result.exit_code == 1 and "unknown tier 'gold'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["keys", "revoke", "--data-dir", str(tmp_path), "ffffffffffff"])
    assert result.exit_code == 1 and "no key" in result.output
    result = runner.invoke(
        app, ["events", "export", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl")]
    )
    assert result.exit_code == 1 and "no event log" in result.output


def test_accounts_set_export_import(tmp_path: Path) -> None:
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    shown = orjson.loads(
        run(
            "accounts",
            "set",
            "acme",
            "--data-dir",
            one,
            "--verified",
            "--country",
            "FR",
            "--requests-limit",
            "100/minute",
            "--tokens-limit",
            "9000/minute",
        )
    )
    assert shown["verified"] is True and shown["limits_override"] == {
        "requests": ["100/minute"],
        "tokens": ["9000/minute"],
    }
    out = tmp_path / "accounts.jsonl"
    run("accounts", "export", "--data-dir", one, "--out", str(out))
    run("accounts", "import", "--data-dir", two, str(out))
    assert orjson.loads(run("accounts", "list", "--data-dir", two, "--json")) == [shown]
    bad = runner.invoke(app, ["accounts", "set", "x", "--data-dir", one, "--requests-limit", "loads"])
    assert bad.exit_code == 1 and "not a rate limit" in bad.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "dg.toml"
    config.write_text('secret = "s3cr3t"\n[[upstreams]]\nbase_url = "http://x/v1"\napi_key = "up-key"\n')
    shown = run("config", "show", "--config", str(config))
    assert "s3cr3t" not in shown and "up-key" not in shown and "http://x/v1" in shown


def leaf_commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            out += leaf_commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_has_help_with_an_example() -> None:
    commands = leaf_commands(typer.main.get_group(app))
    assert ("review", "confirm") in commands and ("admin", "token", "create") in commands and len(commands) > 25
    for command in commands:
        assert "Example:" in run(*command, "--help"), command
