"""`distillguard review` and `distillguard admin token`, driven as a reviewer types them, against a temp data dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from distillguard.cli import app
from distillguard.config import load_settings
from distillguard.respond.book import CaseBook
from distillguard.store import open_store

runner = CliRunner()
MEMBERS = ["a1", "a2", "a3"]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def run(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_json(*args: str) -> Any:
    return orjson.loads(run(*args, "--json"))


def refused(code: int, *args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    return result.output


def book_of(data_dir: Path) -> CaseBook:
    settings = load_settings(None, data_dir=data_dir)
    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    return CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)


@pytest.fixture(autouse=True)
def no_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "tester")


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[str, str]:
    """A campaign case on three accounts, verdict block: applied only up to degrade until a reviewer confirms."""
    case = book_of(tmp_path).open_campaign_case(
        "clu_test", MEMBERS, "block", 0.97, ["shared_template"], actor="operator:seed"
    )
    return str(tmp_path), case.case_id


def standings(d: str, case_id: str) -> dict[str, dict[str, Any]]:
    return {s["account_id"]: s for s in run_json("review", "show", "-d", d, case_id)["standings"]}


def labels(d: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in run("review", "labels", "-d", d).splitlines() if line.strip()]


def test_every_review_and_admin_command_has_help_with_an_example() -> None:
    for command in (
        ["review", "list"],
        ["review", "show"],
        ["review", "confirm"],
        ["review", "reverse"],
        ["review", "escalate"],
        ["review", "appeal"],
        ["review", "audit"],
        ["review", "labels"],
        ["review", "import-campaigns"],
        ["admin", "token", "create"],
        ["admin", "token", "list"],
        ["admin", "token", "revoke"],
    ):
        assert "Example:" in run(*command, "--help"), command


def test_list_and_show_a_case_awaiting_review(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    [listed] = run_json("review", "list", "-d", d)
    assert listed["case_id"] == case_id and listed["status"] == "open"
    assert (listed["proposed"], listed["applied"]) == ("block", "degrade")
    assert listed["subject"] == {"kind": "campaign", "id": "clu_test"} and listed["members"] == MEMBERS
    assert run_json("review", "list", "-d", d, "--status", "confirmed") == []
    table = invoke("review", "list", "-d", d)
    assert case_id in table.stdout and "1 open" in table.output
    assert refused(2, "review", "list", "-d", d, "--status", "closed")

    shown = run_json("review", "show", "-d", d, case_id)
    assert {s["account_id"]: (s["level"], s["pending"]) for s in shown["standings"]} == {
        m: ("degrade", "block") for m in MEMBERS
    }
    assert [e["action"] for e in shown["audit"]] == ["campaign_case_opened"] + ["level_escalated"] * 3
    assert shown["appeals"] == []
    text = run("review", "show", "-d", d, case_id)
    assert "campaign_case_opened" in text and "a3" in text and "no appeals" in text
    assert "no case 'case_nope'" in refused(1, "review", "show", "-d", d, "case_nope")


def test_confirm_blocks_every_member_and_labels_them_attack(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    said = run("review", "confirm", "-d", d, case_id, "--reason", "harvesting evals", "--reviewer", "alice")
    assert f"case {case_id} confirmed by alice" in said and "block applies to 3 accounts" in said
    after = standings(d, case_id)
    assert all(s["level"] == "block" and s["confirmed"] and s["pending"] is None for s in after.values())
    assert sorted(after) == MEMBERS
    assert run_json("review", "list", "-d", d)[0]["status"] == "confirmed"
    assert [(r["account_id"], r["label"], r["reviewer"], r["reason"]) for r in labels(d)] == [
        (m, "attack", "alice", "harvesting evals") for m in MEMBERS
    ]
    audit = run_json("review", "show", "-d", d, case_id)["audit"]
    assert ("reviewer:alice", "case_confirmed") in [(e["actor"], e["action"]) for e in audit]
    # A confirmed case cannot be confirmed or escalated again: a message, not a traceback.
    again = refused(1, "review", "confirm", "-d", d, case_id, "--reason", "again")
    assert "is confirmed" in again
    assert "is confirmed" in refused(1, "review", "escalate", "-d", d, case_id, "--reason", "x")


def test_confirm_at_another_level(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    case = run_json("review", "confirm", "-d", d, case_id, "--reason", "mild", "--level", "throttle")
    assert case["applied"] == "throttle" and case["status"] == "confirmed"
    assert {s["level"] for s in standings(d, case_id).values()} == {"throttle"}
    assert refused(2, "review", "confirm", "-d", d, case_id, "--reason", "x", "--level", "nuke")


def test_reverse_restores_service_exempts_and_labels_benign(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    case = run_json("review", "reverse", "-d", d, case_id, "--reason", "eval partner", "--reviewer", "bob")
    assert case["status"] == "reversed" and case["applied"] == "allow"
    after = standings(d, case_id)
    assert all(s["level"] == "allow" and not s["confirmed"] and s["exempt_until"] for s in after.values())
    assert {(r["label"], r["reviewer"]) for r in labels(d)} == {("benign", "bob")}
    assert "is reversed" in refused(1, "review", "reverse", "-d", d, case_id, "--reason", "twice")


def test_a_confirmed_case_can_be_reversed(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    run("review", "confirm", "-d", d, case_id, "--reason", "looked bad")
    run("review", "reverse", "-d", d, case_id, "--reason", "it was not")
    assert {s["level"] for s in standings(d, case_id).values()} == {"allow"}
    assert [r["label"] for r in labels(d)] == ["attack"] * 3 + ["benign"] * 3


def test_escalate_keeps_what_applies(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    said = run("review", "escalate", "-d", d, case_id, "--reason", "needs a senior")
    assert "escalated by tester" in said  # --reviewer defaults to $USER
    assert run_json("review", "list", "-d", d, "--status", "escalated")[0]["case_id"] == case_id
    assert {s["level"] for s in standings(d, case_id).values()} == {"degrade"}
    assert labels(d) == []
    assert "already escalated" in refused(1, "review", "escalate", "-d", d, case_id, "--reason", "again")
    # A senior reviewer decides an escalated case.
    run("review", "confirm", "-d", d, case_id, "--reason", "agreed", "--reviewer", "senior")
    assert {s["level"] for s in standings(d, case_id).values()} == {"block"}


def test_decisions_need_a_reason_and_a_reviewer(seeded: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    d, case_id = seeded
    assert "a reason is required" in refused(1, "review", "confirm", "-d", d, case_id, "--reason", "  ")
    assert "no case 'case_nope'" in refused(1, "review", "reverse", "-d", d, "case_nope", "--reason", "x")
    monkeypatch.delenv("USER")
    assert "--reviewer" in refused(2, "review", "confirm", "-d", d, case_id, "--reason", "x")
    assert run_json("review", "list", "-d", d)[0]["status"] == "open"  # nothing happened


def test_appeal_on_a_customers_behalf_reopens_a_confirmed_case(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    run("review", "confirm", "-d", d, case_id, "--reason", "bad")
    filed = run_json(
        "review", "appeal", "-d", d, case_id, "--account", "a2", "--message", "eval job", "--contact", "x@y"
    )
    assert filed["appeal_id"].startswith("appeal_") and filed["account_id"] == "a2"
    shown = run_json("review", "show", "-d", d, case_id)
    assert shown["status"] == "open"
    assert [(a["account_id"], a["message"], a["contact"]) for a in shown["appeals"]] == [("a2", "eval job", "x@y")]
    assert [e["action"] for e in shown["audit"]][-2:] == ["appeal_filed", "case_reopened"]
    assert "no case" in refused(1, "review", "appeal", "-d", d, case_id, "--account", "stranger", "--message", "hi")
    assert "needs a message" in refused(1, "review", "appeal", "-d", d, case_id, "--account", "a1", "--message", " ")


def test_audit_lists_and_verify_catches_tampering(seeded: tuple[str, str]) -> None:
    d, case_id = seeded
    run("review", "confirm", "-d", d, case_id, "--reason", "bad")
    entries = run_json("review", "audit", "-d", d)
    assert [e["seq"] for e in entries] == list(range(1, 9))
    assert [e["seq"] for e in run_json("review", "audit", "-d", d, "--since", "4", "--limit", "2")] == [5, 6]
    assert "case_confirmed" in run("review", "audit", "-d", d)
    assert "intact: 8 entries checked" in run("review", "audit", "-d", d, "--verify")

    with sqlite3.connect(Path(d) / "state.db") as db:
        db.execute("""UPDATE audit_log SET detail = '{"from": "allow", "to": "watch"}' WHERE seq = 6""")
    out = refused(1, "review", "audit", "-d", d, "--verify")
    assert "broken at seq 6" in out and "5 entries before it" in out
    result = invoke("review", "audit", "-d", d, "--verify", "--json")
    assert result.exit_code == 1 and orjson.loads(result.stdout) == {"checked": 5, "intact": False, "first_broken": 6}


def test_import_campaigns_opens_cases_at_or_above_the_minimum(tmp_path: Path) -> None:
    d = str(tmp_path / "dg")

    def campaign(cluster: str, verdict: str, members: list[str]) -> dict[str, Any]:
        return {
            "cluster_id": cluster,
            "size": len(members),
            "risk": 0.9,
            "verdict": verdict,
            "evidence": [{"kind": "shared_payment", "links": 2}, {"kind": "template", "links": 1}],
            "members": [{"account_id": m, "link_strength": 1.0, "verdict": verdict} for m in members],
            "events": 40,
            "tokens": 9000,
            "first_seen": "2026-11-24T10:00:00.000000Z",
            "last_seen": "2026-11-24T11:00:00.000000Z",
        }

    path = tmp_path / "verdicts.clusters.jsonl"
    rows = [campaign("clu_a", "block", ["x1", "x2", "x3"]), campaign("clu_b", "throttle", ["y1", "y2"])]
    rows.append(campaign("clu_c", "watch", ["z1"]))
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = invoke("review", "import-campaigns", "-d", d, str(path))
    assert result.exit_code == 0, result.output
    assert "clu_a" in result.stdout and "clu_b" in result.stdout and "clu_c" not in result.stdout
    assert "opened" in result.stdout and "1 campaigns below throttle skipped" in result.output

    cases = {c["subject"]["id"]: c for c in run_json("review", "list", "-d", d)}
    assert sorted(cases) == ["clu_a", "clu_b"]
    assert cases["clu_a"]["reasons"] == ["shared_payment", "template"] and cases["clu_a"]["applied"] == "degrade"
    assert {s["level"] for s in standings(d, cases["clu_b"]["case_id"]).values()} == {"throttle"}
    book = book_of(Path(d))
    assert book.standing("z1").level == "allow"
    assert book.audit(0, 1)[0].actor == "operator:tester"
    # Every campaign of the file is kept in the store for the console, cases or not.
    with sqlite3.connect(Path(d) / "state.db") as db:
        stored = dict(db.execute("SELECT cluster_id, size FROM campaigns").fetchall())
    assert stored == {"clu_a": 3, "clu_b": 2, "clu_c": 1}

    # Importing again updates the open cases, it does not open new ones.
    again = run_json("review", "import-campaigns", "-d", d, str(path), "--min-level", "watch")
    assert [(c["subject"]["id"], c["opened"]) for c in again] == [("clu_a", False), ("clu_b", False), ("clu_c", True)]
    assert len(run_json("review", "list", "-d", d)) == 3

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({"cluster_id": "clu_d", "verdict": "block"}) + b"\n")
    assert "campaign 1: missing or malformed field 'members'" in refused(
        1, "review", "import-campaigns", "-d", d, str(bad)
    )
    bad.write_bytes(orjson.dumps(campaign("clu_e", "nuke", ["q"])) + b"\n")
    assert "unknown verdict 'nuke'" in refused(1, "review", "import-campaigns", "-d", d, str(bad))
    assert "no campaigns file" in refused(1, "review", "import-campaigns", "-d", d, str(tmp_path / "none.jsonl"))
    assert len(run_json("review", "list", "-d", d)) == 3


def test_admin_token_lifecycle(tmp_path: Path) -> None:
    d = str(tmp_path)
    result = invoke("admin", "token", "create", "-d", d, "--name", "alice")
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("dg-admin-") and len(result.stdout.strip().splitlines()) == 1
    assert "shown once" in result.stderr and "not be shown again" in result.stderr
    [listed] = run_json("admin", "token", "list", "-d", d)
    assert listed["name"] == "alice" and listed["revoked_at"] is None and listed["token_id"] in plaintext
    assert plaintext not in run("admin", "token", "list", "-d", d)
    assert book_of(tmp_path).admin_name(plaintext) == "alice"

    run("admin", "token", "revoke", "-d", d, listed["token_id"])
    assert run_json("admin", "token", "list", "-d", d)[0]["revoked_at"] is not None
    assert book_of(tmp_path).admin_name(plaintext) is None
    assert "no active admin token" in refused(1, "admin", "token", "revoke", "-d", d, listed["token_id"])
    assert "needs the name" in refused(1, "admin", "token", "create", "-d", d, "--name", " ")
    actions = [e["action"] for e in run_json("review", "audit", "-d", d)]
    assert actions == ["admin_token_created", "admin_token_revoked"]
