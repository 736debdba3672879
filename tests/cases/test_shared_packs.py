"""Evidence packs of a shared deployment (``[events] sink = "redis"``): no events.db; each member's traffic from the
rollups the ingest worker kept in the store, traffic over time and sample exchanges from the Parquet archive. The
same calls give the same pack as in an embedded deployment; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillguard.cases.export import export_pack
from distillguard.cases.gather import Subject
from distillguard.cases.verify import verify_pack
from distillguard.events.sqlite import EVENTS_DB
from distillguard.intel.member import load_signer
from tests.cases.conftest import CLUSTER, HARVESTERS, build
from tests.cases.test_packs import read
from tests.support.servers import Redis

CAMPAIGN = Subject("campaign", CLUSTER)
# What a pack says of the calls (the rest is the store's, the same in both deployments).
ACTIVITY = ("traffic", "exchanges", "summary")


def activity(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **{key: doc[key] for key in ACTIVITY},
        "members": {a["account_id"]: a["traffic"] for a in doc["accounts"]},
    }


def test_a_shared_deployments_pack_carries_the_traffic_and_exchanges_an_embedded_one_would(
    tmp_path: Path, store_url: str, state_databases: Any, redis_server: Redis
) -> None:
    shared = build(tmp_path / "shared", store_url, redis_server.url)
    embedded = build(tmp_path / "embedded", state_databases.new())
    try:
        assert not (shared.data_dir / EVENTS_DB).exists()
        pack = export_pack(shared.settings, shared.store, CAMPAIGN, tmp_path / "pack").directory
        public = load_signer(shared.settings.intel, shared.data_dir).public_key
        assert verify_pack(pack, public).ok
        doc = read(pack)
        assert doc["notes"] == []
        assert doc["summary"]["calls"] == 135 and {a["traffic"]["calls"] for a in doc["accounts"]} == {45}
        series = doc["traffic"]["series"]
        assert sum(r["calls"] for r in series) == 135 and {r["account_id"] for r in series} == set(HARVESTERS)
        assert len(doc["exchanges"]) == 15 and sum(x["chosen"] == "extraction-like" for x in doc["exchanges"]) == 9
        assert all(x["request"]["messages"] and x["signals"] for x in doc["exchanges"])
        same = read(export_pack(embedded.settings, embedded.store, CAMPAIGN, tmp_path / "embedded-pack").directory)
        assert activity(doc) == activity(same)
    finally:
        shared.store.close()
        embedded.store.close()


def test_without_an_archive_the_pack_has_the_totals_and_says_what_it_lacks(tmp_path: Path, redis_server: Redis) -> None:
    d = build(tmp_path / "dg", None, redis_server.url)
    try:
        assert d.settings.events.archive_dir is not None  # archived, then the setting taken away
        events = d.settings.events.model_copy(update={"archive_dir": None})
        d.settings = d.settings.model_copy(update={"events": events})
        doc = read(export_pack(d.settings, d.store, Subject("account", "harv-2"), tmp_path / "pack").directory)
        assert doc["accounts"][0]["traffic"]["calls"] == 45 and doc["summary"]["calls"] == 45
        assert doc["traffic"] is None and doc["exchanges"] == []
        assert any("no traffic over time and no sample exchanges" in note for note in doc["notes"])
    finally:
        d.store.close()
