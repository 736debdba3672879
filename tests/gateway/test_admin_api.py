"""The admin API and the customer's appeal route, in process over ASGI (httpx), on a real gateway and state store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from distillguard.config import DetectConfig, EventsConfig, RespondConfig, Settings, UpstreamConfig
from distillguard.gateway.app import Gateway, build_app
from distillguard.mock_upstream.server import running_mock
from distillguard.watermark.checks import list_checks

MEMBERS = ["a1", "a2", "a3"]


@dataclass
class Env:
    gw: Gateway
    client: httpx.AsyncClient
    admin: dict[str, str]  # headers with alice's admin token
    keys: dict[str, str]  # account -> customer API key
    case_id: str

    def customer(self, account: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[account]}"}


def settings(tmp_path: Path, base_url: str, respond: bool = True) -> Settings:
    return Settings(
        data_dir=tmp_path,
        upstreams=[UpstreamConfig(base_url=base_url)],
        events=EventsConfig(flush_interval_ms=10),
        detect=DetectConfig(enabled=False),
        respond=RespondConfig(enabled=respond),
    )


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_mock() as base_url:
        gw = Gateway(settings(tmp_path, base_url))
        keys = {}
        for account in [*MEMBERS, "outsider"]:
            gw.store.upsert_account(account)
            keys[account] = gw.store.create_key(account)[1]
        assert gw.book is not None
        _, token = gw.book.create_admin_token("alice", "operator:test")
        case = gw.book.open_campaign_case("clu_t", MEMBERS, "block", 0.97, ["template"], "operator:test")
        await gw.startup()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(gw)), base_url="http://gw") as c:
                yield Env(gw, c, {"authorization": f"Bearer {token}"}, keys, case.case_id)
        finally:
            await gw.shutdown()


def error(response: httpx.Response, status: int, code: str, param: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert (body["code"], body["param"]) == (code, param), body
    return str(body["message"])


def level_in_gateway(env: Env, account: str) -> tuple[str, bool]:
    assert env.gw.responder is not None
    st = env.gw.responder.standings[account]
    return st.level, st.confirmed


async def test_admin_routes_need_a_valid_admin_token(env: Env) -> None:
    c = env.client
    for path in ("/admin/v1/cases", f"/admin/v1/cases/{env.case_id}", "/admin/v1/audit", "/admin/v1/labels"):
        error(await c.get(path), 401, "invalid_admin_token")
    bad = env.admin["authorization"][:-4] + "AAAA"
    error(await c.get("/admin/v1/cases", headers={"authorization": bad}), 401, "invalid_admin_token")
    error(await c.get("/admin/v1/cases", headers={"authorization": "Basic x"}), 401, "invalid_admin_token")
    # A customer's API key is not an admin token.
    error(await c.get("/admin/v1/cases", headers=env.customer("a1")), 401, "invalid_admin_token")
    # Nor can one act without one.
    r = await c.post(f"/admin/v1/cases/{env.case_id}/reverse", json={"reason": "let me in"})
    error(r, 401, "invalid_admin_token")
    assert env.gw.book is not None and env.gw.book.case(env.case_id).status == "open"
    assert (await c.get("/admin/v1/cases", headers=env.admin)).status_code == 200


async def test_a_revoked_admin_token_is_refused(env: Env) -> None:
    assert env.gw.book is not None
    [token] = env.gw.book.admin_tokens()
    env.gw.book.revoke_admin_token(token["token_id"], "operator:test")
    error(await env.client.get("/admin/v1/cases", headers=env.admin), 401, "invalid_admin_token")


async def test_list_and_show_cases(env: Env) -> None:
    c, h = env.client, env.admin
    listed = (await c.get("/admin/v1/cases", headers=h)).json()
    assert listed["object"] == "list" and listed["counts"] == {"open": 1}
    [case] = listed["data"]
    assert (case["case_id"], case["status"], case["proposed"], case["applied"]) == (
        env.case_id,
        "open",
        "block",
        "degrade",
    )
    assert (await c.get("/admin/v1/cases?status=confirmed", headers=h)).json()["data"] == []
    assert (await c.get("/admin/v1/cases?offset=1", headers=h)).json()["data"] == []
    error(await c.get("/admin/v1/cases?status=closed", headers=h), 400, "invalid_value", "status")
    error(await c.get("/admin/v1/cases?limit=0", headers=h), 400, "invalid_value", "limit")
    error(await c.get("/admin/v1/cases?limit=ten", headers=h), 400, "invalid_value", "limit")

    shown = (await c.get(f"/admin/v1/cases/{env.case_id}", headers=h)).json()
    assert shown["case_id"] == env.case_id and shown["members"] == MEMBERS and shown["appeals"] == []
    assert [e["action"] for e in shown["audit"]] == ["campaign_case_opened"] + ["level_escalated"] * 3
    assert [(s["account_id"], s["level"], s["pending"]) for s in shown["standings"]] == [
        (m, "degrade", "block") for m in MEMBERS
    ]
    error(await c.get("/admin/v1/cases/case_nope", headers=h), 404, "case_not_found")


async def test_confirm_applies_in_this_gateway_at_once_and_labels_attack(env: Env) -> None:
    c, h = env.client, env.admin
    assert level_in_gateway(env, "a1") == ("degrade", False)
    r = await c.post(
        f"/admin/v1/cases/{env.case_id}/confirm", headers=h, json={"reason": "harvester", "level": "block"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["applied"]) == ("confirmed", "block")
    assert all(level_in_gateway(env, m) == ("block", True) for m in MEMBERS)
    standing = (await c.get("/admin/v1/accounts/a2/standing", headers=h)).json()
    assert (standing["level"], standing["confirmed"], standing["source"]) == ("block", True, "review")

    shown = (await c.get(f"/admin/v1/cases/{env.case_id}", headers=h)).json()
    decided = [e for e in shown["audit"] if e["action"] == "case_confirmed"]
    assert [(e["actor"], e["detail"]["reason"]) for e in decided] == [("reviewer:alice", "harvester")]
    labels = (await c.get("/admin/v1/labels", headers=h)).json()["data"]
    assert [(lb["account_id"], lb["label"], lb["reviewer"]) for lb in labels] == [
        (m, "attack", "alice") for m in MEMBERS
    ]
    r = await c.post(f"/admin/v1/cases/{env.case_id}/confirm", headers=h, json={"reason": "again"})
    assert "is confirmed" in error(r, 409, "case_state")


async def test_reverse_restores_service_at_once(env: Env) -> None:
    c, h = env.client, env.admin
    r = await c.post(f"/admin/v1/cases/{env.case_id}/reverse", headers=h, json={"reason": "eval partner"})
    assert r.status_code == 200 and r.json()["applied"] == "allow"
    assert all(level_in_gateway(env, m) == ("allow", False) for m in MEMBERS)
    standing = (await c.get("/admin/v1/accounts/a3/standing", headers=h)).json()
    assert standing["level"] == "allow" and standing["exempt_until"] is not None
    labels = (await c.get("/admin/v1/labels", headers=h)).json()["data"]
    assert {lb["label"] for lb in labels} == {"benign"} and len(labels) == 3
    r = await c.post(f"/admin/v1/cases/{env.case_id}/escalate", headers=h, json={"reason": "late"})
    error(r, 409, "case_state")


async def test_escalate(env: Env) -> None:
    c, h = env.client, env.admin
    r = await c.post(f"/admin/v1/cases/{env.case_id}/escalate", headers=h, json={"reason": "big customer"})
    assert r.status_code == 200 and r.json()["status"] == "escalated" and r.json()["applied"] == "degrade"
    assert level_in_gateway(env, "a1") == ("degrade", False)
    assert (await c.get("/admin/v1/cases", headers=h)).json()["counts"] == {"escalated": 1}
    r = await c.post(f"/admin/v1/cases/{env.case_id}/escalate", headers=h, json={"reason": "again"})
    assert "already escalated" in error(r, 409, "case_state")
    r = await c.post("/admin/v1/cases/case_nope/escalate", headers=h, json={"reason": "x"})
    error(r, 404, "case_not_found")


async def test_bad_decision_requests_are_400_naming_the_parameter(env: Env) -> None:
    c, h = env.client, env.admin
    url = f"/admin/v1/cases/{env.case_id}"
    error(await c.post(f"{url}/confirm", headers=h, content=b"{not json"), 400, "invalid_json")
    error(await c.post(f"{url}/confirm", headers=h, content=b"[1]"), 400, "invalid_json")
    error(await c.post(f"{url}/confirm", headers=h, json={}), 400, "missing_required_parameter", "reason")
    error(await c.post(f"{url}/confirm", headers=h, json={"reason": "  "}), 400, "invalid_value", "reason")
    error(await c.post(f"{url}/confirm", headers=h, json={"reason": 5}), 400, "invalid_value", "reason")
    r = await c.post(f"{url}/confirm", headers=h, json={"reason": "x", "level": "nuke"})
    error(r, 400, "invalid_value", "level")
    error(
        await c.post(f"{url}/confirm", headers=h, json={"reason": "x", "level": "allow"}), 400, "invalid_value", "level"
    )
    error(
        await c.post(f"{url}/reverse", headers=h, json={"reason": "x", "level": "block"}), 400, "invalid_value", "level"
    )
    assert env.gw.book is not None and env.gw.book.case(env.case_id).status == "open"


async def test_a_customer_appeals_with_their_own_key_even_when_blocked(env: Env) -> None:
    c, h = env.client, env.admin
    await c.post(f"/admin/v1/cases/{env.case_id}/confirm", headers=h, json={"reason": "harvester"})
    assert level_in_gateway(env, "a1") == ("block", True)
    chat = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    error(await c.post("/v1/chat/completions", headers=env.customer("a1"), json=chat), 403, "account_blocked")
    body = {"case_id": env.case_id, "message": "we run nightly evals", "contact": "ops@a1.test"}
    r = await c.post("/v1/appeals", headers=env.customer("a1"), json=body)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["appeal_id"].startswith("appeal_")
    assert (filed["case_id"], filed["account_id"], filed["contact"]) == (env.case_id, "a1", "ops@a1.test")
    shown = (await c.get(f"/admin/v1/cases/{env.case_id}", headers=h)).json()
    assert shown["status"] == "open" and [a["appeal_id"] for a in shown["appeals"]] == [filed["appeal_id"]]
    assert ("customer:a1", "appeal_filed") in [(e["actor"], e["action"]) for e in shown["audit"]]


async def test_appeal_refusals(env: Env) -> None:
    c = env.client
    # Someone else's case answers like a case that does not exist.
    r = await c.post("/v1/appeals", headers=env.customer("outsider"), json={"case_id": env.case_id, "message": "hi"})
    error(r, 404, "case_not_found", "case_id")
    r = await c.post("/v1/appeals", headers=env.customer("a1"), json={"case_id": "case_nope", "message": "hi"})
    error(r, 404, "case_not_found", "case_id")
    error(await c.post("/v1/appeals", json={"case_id": env.case_id, "message": "hi"}), 401, "invalid_api_key")
    r = await c.post("/v1/appeals", headers=env.admin, json={"case_id": env.case_id, "message": "hi"})
    error(r, 401, "invalid_api_key")
    r = await c.post("/v1/appeals", headers=env.customer("a1"), json={"case_id": env.case_id})
    error(r, 400, "missing_required_parameter", "message")
    r = await c.post("/v1/appeals", headers=env.customer("a1"), json={"message": "hi"})
    error(r, 400, "missing_required_parameter", "case_id")
    r = await c.post(
        "/v1/appeals", headers=env.customer("a1"), json={"case_id": env.case_id, "message": "hi", "contact": 1}
    )
    error(r, 400, "invalid_value", "contact")
    error(await c.post("/v1/appeals", headers=env.customer("a1"), content=b"nope"), 400, "invalid_json")
    assert env.gw.book is not None and env.gw.book.appeals(env.case_id) == []
    # The calls are logged like every customer call (probing case ids is a signal).
    env.gw.sink.flush()  # type: ignore[attr-defined]
    logged = [(e.account_id, e.status, e.error_code) for e in env.gw.sink.iter_events()]  # type: ignore[attr-defined]
    assert ("outsider", 404, "case_not_found") in logged and ("a1", 400, "invalid_json") in logged


async def test_audit_and_verify(env: Env) -> None:
    c, h = env.client, env.admin
    await c.post(f"/admin/v1/cases/{env.case_id}/escalate", headers=h, json={"reason": "look"})
    entries = (await c.get("/admin/v1/audit", headers=h)).json()["data"]
    # 1 token created, 1 case opened, 3 standings moved, 1 escalation.
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[-1]["action"] == "case_escalated" and entries[-1]["actor"] == "reviewer:alice"
    page = (await c.get("/admin/v1/audit?since=2&limit=2", headers=h)).json()["data"]
    assert [e["seq"] for e in page] == [3, 4]
    error(await c.get("/admin/v1/audit?since=-1", headers=h), 400, "invalid_value", "since")
    assert (await c.get("/admin/v1/audit/verify", headers=h)).json() == {
        "checked": 6,
        "intact": True,
        "first_broken": None,
    }
    with sqlite3.connect(env.gw.settings.data_dir / "state.db") as db:
        db.execute("UPDATE audit_log SET actor = 'reviewer:mallory' WHERE seq = 6")
    assert (await c.get("/admin/v1/audit/verify", headers=h)).json() == {
        "checked": 5,
        "intact": False,
        "first_broken": 6,
    }


async def test_watermark_detection_is_recorded_as_a_check_when_it_names_a_subject(env: Env) -> None:
    c, h = env.client, env.admin
    text = "The answer is four. It follows from adding two and two, as the table shows."
    plain = await c.post("/admin/v1/watermark/detect", headers=h, json={"text": text})
    assert plain.status_code == 200 and "check_id" not in plain.json()
    assert list_checks(env.gw.store.engine) == []
    named = await c.post(
        "/admin/v1/watermark/detect", headers=h, json={"text": text, "accounts": ["a1"], "subject": "account:a1"}
    )
    assert named.status_code == 200, named.text
    [check] = list_checks(env.gw.store.engine)
    assert check["check_id"] == named.json()["check_id"] and check["actor"] == "reviewer:alice"
    assert check["subject"] == {"kind": "account", "id": "a1"} and check["p_value"] == named.json()["p_value"]
    error(
        await c.post("/admin/v1/watermark/detect", headers=h, json={"text": text, "subject": "x"}),
        400,
        "invalid_value",
        "subject",
    )
    error(
        await c.post("/admin/v1/watermark/detect", headers=h, json={"text": text, "subject": ["account:a1"]}),
        400,
        "invalid_value",
        "subject",
    )
    assert len(list_checks(env.gw.store.engine)) == 1


async def test_respond_disabled_answers_404(tmp_path: Path) -> None:
    async with running_mock() as base_url:
        gw = Gateway(settings(tmp_path, base_url, respond=False))
        gw.store.upsert_account("a1")
        _, key = gw.store.create_key("a1")
        await gw.startup()
        try:
            transport = httpx.ASGITransport(app=build_app(gw))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                cases = await c.get("/admin/v1/cases")
                assert cases.status_code == 404
                assert "respond.enabled = false" in error(cases, 404, "respond_disabled")
                r = await c.post("/v1/appeals", headers={"authorization": f"Bearer {key}"}, json={"case_id": "x"})
                assert r.json()["error"]["code"] == "respond_disabled"
                error(r, 404, "respond_disabled")
            assert gw.book is None and gw.responder is None
        finally:
            await gw.shutdown()
