"""Campaigns in the state store (SQLite and PostgreSQL): saved with their members, replaced when found again, ids
carried over to the campaigns that continue them, malformed campaigns refused with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from distillguard.clusters.campaign import Campaign, cluster_id
from distillguard.clusters.store import carry_ids, parse_campaign, parse_campaigns, save_campaigns
from distillguard.store import open_store
from distillguard.store.schema import campaign_members, campaigns
from distillguard.timefmt import parse_rfc3339, utcnow


def body(cid: str, members: list[str], verdict: str = "degrade", events: int = 120) -> dict[str, Any]:
    return {
        "cluster_id": cid,
        "size": len(members),
        "risk": 0.8,
        "verdict": verdict,
        "events": events,
        "tokens": events * 300,
        "first_seen": "2026-11-24T10:00:00.000000Z",
        "last_seen": "2026-11-24T12:30:00.000000Z",
        "evidence": [{"kind": "shared_template", "links": 3}, {"kind": "synchronised", "links": 2}],
        "members": [{"account_id": m, "link_strength": 2.5, "verdict": verdict} for m in members],
        "links": [{"a": members[0], "b": members[1], "weight": 2.7, "evidence": []}],
    }


def members_of(engine: Engine, cid: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(campaign_members.c.account_id).where(campaign_members.c.cluster_id == cid))
        return {r[0] for r in rows}


def campaign(members: list[str]) -> Campaign:
    return Campaign(
        cluster_id=cluster_id(members),
        members=members,
        strength=dict.fromkeys(members, 3.0),
        events=10 * len(members),
        tokens=0,
        first_us=0,
        last_us=0,
        capabilities={},
        evidence=[],
        unavailable={},
    )


def test_a_campaign_found_again_replaces_its_row_and_members(tmp_path: Path, store_url: str) -> None:
    engine = open_store(tmp_path, store_url).engine
    save_campaigns(
        engine, parse_campaigns([body("clu_a", ["x1", "x2", "x3"]), body("clu_b", ["y1", "y2", "y3"])]), utcnow()
    )
    save_campaigns(engine, [parse_campaign(body("clu_a", ["x1", "x2", "x4", "x5"], "block", 300), 1)], utcnow())
    assert members_of(engine, "clu_a") == {"x1", "x2", "x4", "x5"}
    assert members_of(engine, "clu_b") == {"y1", "y2", "y3"}  # not found again: kept as it was
    with engine.connect() as conn:
        row = conn.execute(select(campaigns).where(campaigns.c.cluster_id == "clu_a")).one()._mapping
    assert (row["verdict"], row["size"], row["events"], row["tokens"]) == ("block", 4, 300, 90_000)
    assert row["body"]["links"][0]["a"] == "x1" and row["body"]["members"][3]["account_id"] == "x5"
    assert parse_rfc3339(str(row["first_seen"]).replace(" ", "T")) == parse_rfc3339("2026-11-24T10:00:00Z")


def test_campaigns_that_continue_a_stored_one_keep_its_id(tmp_path: Path, store_url: str) -> None:
    engine = open_store(tmp_path, store_url).engine
    old = [f"h{i}" for i in range(6)]
    save_campaigns(engine, [parse_campaign(body("clu_hydra", old), 1)], utcnow())
    grown = campaign([*old[:4], "h6", "h7", "h8"])  # 4 of the stored 6 (more than half), and 3 new accounts
    stranger = campaign(["s1", "s2", old[5]])  # 1 of the 6: a campaign of its own
    natural = grown.cluster_id
    assert carry_ids(engine, [stranger, grown]) == 1
    assert grown.cluster_id == "clu_hydra" and natural != "clu_hydra"
    assert stranger.cluster_id == cluster_id(["s1", "s2", old[5]])
    # Two stored campaigns merged into one found again: it continues the one it shares the most accounts with.
    save_campaigns(engine, [parse_campaign(body("clu_small", ["m1", "m2", "m3"]), 1)], utcnow())
    merged = campaign([*old, "m1", "m2", "m3"])
    assert carry_ids(engine, [merged]) == 1 and merged.cluster_id == "clu_hydra"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"members": None}, "missing or malformed field"),
        ({"cluster_id": "c" * 33}, "cluster_id must be a string of 1 to 32 characters"),
        ({"verdict": "nuke"}, "unknown verdict 'nuke'"),
        ({"events": -1}, "events and tokens must be counts"),
        ({"first_seen": "yesterday"}, "first_seen and last_seen must be RFC 3339 times"),
        ({"members": [{"account_id": "a"}, {"account_id": "a"}]}, "listed twice"),
        ({"risk": "high"}, "risk must be a number"),
    ],
)
def test_malformed_campaigns_are_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_campaigns([body("clu_ok", ["a", "b", "c"]), {**body("clu_x", ["a", "b", "c"]), **change}])
