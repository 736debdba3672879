"""The OASIS taxii2-client, unchanged, against a running hub: discovery to status, pages and filters, and every
object and resource it gets passes the OASIS STIX validator."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stix2
from stix2validator import ValidationOptions, validate_instance, validate_parsed_json
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from distillguard.intel.hub.stamps import parse_stamp
from tests.intel.hub.conftest import Hub
from tests.intel.hub.samples import as_json, campaign_report, indicator, indicators

OPTIONS = ValidationOptions(version="2.1")


def assert_valid_stix(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        result = validate_instance(obj, OPTIONS)
        assert result.is_valid, [str(e) for e in result.errors]
    # And as one bundle, the way a member would archive what it pulled.
    bundle = {"type": "bundle", "id": "bundle--0f3b8a4a-3c51-4bd8-9d8d-2a3c8b1d6f10", "objects": objects}
    assert validate_parsed_json(bundle, OPTIONS).is_valid


def collection_for(hub: Hub, member: str, collection_id: str) -> Collection:
    root = ApiRoot(hub.root, user=member, password=hub.secrets[member])
    return next(c for c in root.collections if c.id == collection_id)


def test_discovery_api_root_and_collections(hub: Hub) -> None:
    member, secret = hub.member("disco")
    collection_id = hub.collection("disco-feed", disco="rw")
    server = Server(hub.discovery, user=member, password=secret)
    assert server.title == "distillguard hub"
    assert [root.url for root in server.api_roots] == [hub.root]
    assert server.default is not None and server.default.url == hub.root
    root = server.default
    assert root.title == "distillguard hub" and root.versions == ["application/taxii+json;version=2.1"]
    assert root.max_content_length == 64 * 1024
    (collection,) = root.collections
    assert collection.id == collection_id and collection.title == "disco-feed title"
    assert collection.description == "what disco-feed holds" and collection.alias == "disco-feed"
    assert collection.can_read and collection.can_write
    assert collection.media_types == ["application/stix+json;version=2.1"]


def test_add_then_read_back_every_way(hub: Hub) -> None:
    hub.member("flow")
    collection_id = hub.collection("flow-feed", flow="rw")
    collection = collection_for(hub, "flow", collection_id)
    report = campaign_report()

    status = collection.add_objects({"objects": report})
    assert status.status == "complete" and status.total_count == len(report)
    assert status.success_count == len(report) and status.failure_count == 0 and status.pending_count == 0
    assert {s["id"] for s in status.successes} == {o["id"] for o in report}
    # The status resource stays retrievable, by the URL taxii2-client builds for it.
    status.refresh()
    assert status.success_count == len(report)
    again = ApiRoot(hub.root, user="flow", password=hub.secrets["flow"]).get_status(status.id)
    assert again.id == status.id and again.total_count == len(report)

    envelope = collection.get_objects()
    served = envelope["objects"]
    # Stored as received, served in the order added.
    assert served == report and envelope["more"] is False
    assert_valid_stix(served)

    manifest = collection.get_manifest()["objects"]
    assert [m["id"] for m in manifest] == [o["id"] for o in report]
    by_id = {o["id"]: o for o in report}
    for record in manifest:
        assert record["media_type"] == "application/stix+json;version=2.1"
        assert record["version"] == by_id[record["id"]].get("modified", record["version"])
        parse_stamp(record["date_added"])
    added = [parse_stamp(m["date_added"]) for m in manifest]
    assert added == sorted(added) and len(set(added)) == len(added)

    grouping = next(o for o in report if o["type"] == "grouping")
    one = collection.get_object(grouping["id"])
    assert one["objects"] == [grouping]
    assert collection.object_versions(grouping["id"])["versions"] == [grouping["modified"]]

    by_type = collection.get_objects(type=["relationship", "sighting"])["objects"]
    assert sorted(o["type"] for o in by_type) == ["relationship", "relationship", "sighting"]
    assert collection.get_objects(id=grouping["id"])["objects"] == [grouping]
    assert collection.get_objects(spec_version="2.0").get("objects", []) == []


def test_pages_with_limit_next_and_added_after(hub: Hub) -> None:
    hub.member("pager")
    collection_id = hub.collection("pager-feed", pager="rw")
    collection = collection_for(hub, "pager", collection_id)
    posted = indicators(23)
    for start in range(0, len(posted), 10):
        assert collection.add_objects({"objects": posted[start : start + 10]}).success_count == len(
            posted[start : start + 10]
        )

    pages = list(as_pages(collection.get_objects, per_request=5))
    assert [len(p.get("objects", [])) for p in pages] == [5, 5, 5, 5, 3]
    assert all(p["more"] for p in pages[:-1]) and not pages[-1]["more"] and "next" not in pages[-1]
    assert [o["id"] for p in pages for o in p["objects"]] == [o["id"] for o in posted]

    manifest_pages = list(as_pages(collection.get_manifest, per_request=10))
    assert [len(p["objects"]) for p in manifest_pages] == [10, 10, 3]

    # added_after: strictly after the date_added of the 20th object, with the headers telling where a page ends.
    response = collection._conn.session.get(
        collection.objects_url, params={"limit": 20}, headers={"Accept": "application/taxii+json;version=2.1"}
    )
    last = response.headers["X-TAXII-Date-Added-Last"]
    first = response.headers["X-TAXII-Date-Added-First"]
    assert parse_stamp(first) < parse_stamp(last)
    rest = collection.get_objects(added_after=last)["objects"]
    assert [o["id"] for o in rest] == [o["id"] for o in posted[20:]]
    # Filters hold across pages.
    filtered = [o for p in as_pages(collection.get_objects, per_request=2, added_after=last) for o in p["objects"]]
    assert filtered == posted[20:]


def test_versions_of_an_object(hub: Hub) -> None:
    hub.member("versioner")
    collection_id = hub.collection("versions-feed", versioner="rw")
    collection = collection_for(hub, "versioner", collection_id)
    original = indicator(99)
    revisions = [original]
    for step in range(2):
        time.sleep(0.002)  # a later `modified` (millisecond precision in stix2)
        revisions.append(revisions[-1].new_version(description=f"revision {step + 1}"))
    objects = as_json(*revisions)
    collection.add_objects({"objects": objects})
    object_id = original.id

    versions = collection.object_versions(object_id)["versions"]
    assert versions == [o["modified"] for o in objects]
    # Default: the latest version only; first / all / a given version on request.
    assert collection.get_object(object_id)["objects"] == [objects[-1]]
    assert collection.get_objects()["objects"] == [objects[-1]]
    assert collection.get_object(object_id, version="first")["objects"] == [objects[0]]
    assert collection.get_object(object_id, version="all")["objects"] == objects
    assert collection.get_object(object_id, version=objects[1]["modified"])["objects"] == [objects[1]]
    assert len(collection.get_manifest(version="all")["objects"]) == 3

    # A second post of a known version is an idempotent success, and stores nothing new.
    status = collection.add_objects({"objects": [objects[1]]})
    assert status.success_count == 1 and status.successes[0]["message"] == "already in the collection"
    assert len(collection.object_versions(object_id)["versions"]) == 3

    # Delete one version, then the object.
    collection.delete_object(object_id, version=objects[-1]["modified"])
    assert collection.get_object(object_id)["objects"] == [objects[1]]
    collection.delete_object(object_id)
    with pytest.raises(requests.HTTPError, match="404"):
        collection.get_object(object_id)


def test_invalid_objects_are_refused_with_reasons(hub: Hub) -> None:
    hub.member("sloppy")
    collection_id = hub.collection("sloppy-feed", sloppy="rw")
    collection = collection_for(hub, "sloppy", collection_id)
    good = indicators(1)[0]
    no_pattern = {k: v for k, v in indicators(1, start=5)[0].items() if k != "pattern"}
    bad_pattern = {**indicators(1, start=6)[0], "pattern": "[ipv4-addr:value = ]"}
    old = {**indicators(1, start=7)[0], "spec_version": "2.0"}
    status = collection.add_objects({"objects": [good, no_pattern, bad_pattern, old, "not an object"]})
    assert status.total_count == 5 and status.success_count == 1 and status.failure_count == 4
    reasons = {f["id"]: f["message"] for f in status.failures}
    assert "'pattern' is a required property" in reasons[no_pattern["id"]]
    assert "Pattern failed to validate" in reasons[bad_pattern["id"]]
    assert '"2.1"' in reasons[old["id"]]
    assert reasons[""] == "not a JSON object"
    assert collection.get_objects()["objects"] == [good]


def test_stix2_library_reads_what_the_hub_serves(hub: Hub) -> None:
    hub.member("library")
    collection_id = hub.collection("library-feed", library="rw")
    collection = collection_for(hub, "library", collection_id)
    report = campaign_report()
    collection.add_objects({"objects": report})
    source = stix2.TAXIICollectionSource(collection)
    grouping = next(o for o in report if o["type"] == "grouping")
    fetched = source.get(grouping["id"])
    assert fetched is not None and fetched.context == "suspicious-activity"
    assert len(source.query([stix2.Filter("type", "=", "indicator")])) == 2
