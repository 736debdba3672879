"""`distillguard db`: upgrade, current and history as an operator types them, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from distillguard.store import migrate
from distillguard.store.cli import db_app
from distillguard.store.state import STATE_DB
from tests.support.processes import free_port

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def invoke(*args: str) -> Result:
    return runner.invoke(db_app, list(args))


def run_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_every_db_command_has_help_with_an_example() -> None:
    for command in ("upgrade", "current", "history"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example: distillguard db" in result.output, command


def test_upgrade_creates_the_store_and_current_reports_it(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLGUARD_STORE_URL", store_url)
    d = str(tmp_path)
    assert run_json("current", "-d", d) == {
        "store": store_url,
        "revision": None,
        "head": migrate.head(),
        "current": False,
    }
    assert "empty" in invoke("current", "-d", d).stdout
    assert run_json("upgrade", "-d", d) == {"store": store_url, "from": None, "revision": migrate.head()}
    assert run_json("current", "-d", d)["current"] is True
    again = invoke("upgrade", "-d", d)
    assert again.exit_code == 0 and "already current" in again.stdout


def test_current_names_a_database_made_before_migrations_and_upgrade_adopts_it(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / STATE_DB) as conn:
        conn.executescript((DATA / "state-before-migrations.sql").read_text())
    assert "unversioned" in invoke("current", "-d", str(tmp_path)).stdout
    upgraded = invoke("upgrade", "-d", str(tmp_path))
    assert upgraded.exit_code == 0 and "upgraded from an unversioned database" in upgraded.stdout


def test_history_lists_the_chain_oldest_first() -> None:
    rows = run_json("history")
    assert [r["revision"] for r in rows] == [r.revision for r in migrate.history()]
    assert rows[-1]["revision"] == migrate.head() and rows[0]["down_revision"] is None
    assert "Baseline" in invoke("history").stdout


def test_an_unreachable_server_is_a_message_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLGUARD_STORE_URL", f"postgresql+psycopg://dg:hunter2@127.0.0.1:{free_port()}/dg")
    for command in ("current", "upgrade"):
        result = invoke(command, "-d", str(tmp_path))
        assert result.exit_code == 1 and "unreachable" in result.output, result.output
        assert "hunter2" not in result.output and "Traceback" not in result.output
