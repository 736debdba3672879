"""The hub's store without a server: date_added as a cursor, version selection, rights, API roots."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from distillguard.intel.hub import query as q
from distillguard.intel.hub.admission import Incoming, admit
from distillguard.intel.hub.store import HubError, HubStore, open_hub_store
from tests.intel.hub.samples import as_json, indicator, indicators

MAX_PAGE = 1000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    opened = open_hub_store(tmp_path)
    yield opened
    opened.close()


def admitted(objects: list[dict[str, object]]) -> list[Incoming]:
    out = [admit(o) for o in objects]
    assert all(isinstance(o, Incoming) for o in out)
    return [o for o in out if isinstance(o, Incoming)]


def query(**params: str) -> q.Query:
    """``query(match_version="all", limit="3")``: the query of ``?match[version]=all&limit=3``."""
    names = {k: f"match[{k.removeprefix('match_')}]" if k.startswith("match_") else k for k in params}
    return q.parse_query({names[k]: [v] for k, v in params.items()}, q.OBJECTS, MAX_PAGE)


def test_cursor_pages_neither_repeat_nor_skip_while_objects_arrive(store: HubStore) -> None:
    collection = store.create_collection("feed").id
    store.add_objects(collection, "m", admitted(indicators(7)))
    seen: list[str] = []
    cursor: str | None = None
    arrivals = iter([indicators(3, start=100), indicators(2, start=200)])
    while True:
        params = {"limit": ["3"], **({"next": [cursor]} if cursor else {})}
        page = store.objects(collection, q.parse_query(params, q.OBJECTS, MAX_PAGE))
        seen += [r.object_id for r in page.records]
        # More objects arrive between pages: they come after everything served so far.
        more = next(arrivals, None)
        if more is not None:
            store.add_objects(collection, "m", admitted(more))
        if not page.more:
            break
        cursor = q.encode_cursor(page.records[-1].date_added_us)
    everything = [r.object_id for r in store.objects(collection, query(limit="1000")).records]
    assert seen == everything and len(seen) == 12 and len(set(seen)) == 12


def test_date_added_is_strictly_increasing_even_within_one_post(store: HubStore) -> None:
    collection = store.create_collection("feed").id
    store.add_objects(collection, "m", admitted(indicators(50)))
    store.add_objects(collection, "m", admitted(indicators(50, start=50)))
    added = [r.date_added_us for r in store.manifest(collection, query()).records]
    assert len(added) == 100 and all(a < b for a, b in itertools.pairwise(added))


def test_version_selection(store: HubStore) -> None:
    collection = store.create_collection("feed").id
    first = indicator(1)
    second = first.new_version(modified="2099-01-01T00:00:00.000Z")
    third = second.new_version(modified="2099-06-01T00:00:00.000Z")
    # Added out of order: "last" is the latest `modified`, not the latest added.
    store.add_objects(collection, "m", admitted(as_json(third, first, second)))

    def versions(**params: str) -> list[str]:
        return [r.version for r in store.objects(collection, query(**params)).records]

    assert versions() == ["2099-06-01T00:00:00.000Z"]
    assert versions(match_version="first") == [as_json(first)[0]["modified"]]
    assert len(versions(match_version="all")) == 3
    assert len(versions(match_version="first,last")) == 2
    assert versions(match_version="2099-01-01T00:00:00Z") == ["2099-01-01T00:00:00.000Z"]
    assert store.delete_object(collection, first.id, q.parse_query({"match[version]": ["last"]}, q.DELETE, 1)) == 1
    assert versions() == ["2099-01-01T00:00:00.000Z"]
    assert store.delete_object(collection, first.id, q.parse_query({}, q.DELETE, 1, default_version="all")) == 2
    assert not store.has_object(collection, first.id)


def test_unversioned_objects_are_stored_once(store: HubStore) -> None:
    collection = store.create_collection("feed").id
    address: dict[str, object] = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    first = store.add_objects(collection, "m", admitted([address]))
    again = store.add_objects(collection, "m", admitted([address, address]))
    assert first[0].new and not again[0].new and not again[1].new
    assert again[0].version == first[0].version  # its date_added, the first time
    assert len(store.objects(collection, query(match_version="all")).records) == 1


def test_collections_belong_to_one_api_root(store: HubStore) -> None:
    store.add_member("m")
    store.add_api_root("research", "Research group")
    main = store.create_collection("feed")
    other = store.create_collection("feed", api_root="research")
    for collection in (main, other):
        store.grant("m", collection.id, read=True, write=False)
    assert [a.collection.id for a in store.accessible("m", "api")] == [main.id]
    assert [a.collection.id for a in store.accessible("m", "research")] == [other.id]
    assert store.access("m", "api", other.id) is None
    with pytest.raises(HubError, match="several API roots"):
        store.find_collection("feed")
    with pytest.raises(HubError, match="no API root"):
        store.create_collection("x", api_root="missing")


def test_grant_adds_and_revoke_takes(store: HubStore) -> None:
    store.add_member("m")
    collection = store.create_collection("feed")
    assert not store.grant("m", "feed", read=True, write=False).can_write
    right = store.grant("m", "feed", read=False, write=True)
    assert right.can_read and right.can_write
    assert not store.revoke("m", "feed", read=False, write=True).can_write
    assert store.access("m", "api", collection.id) is not None
    store.revoke("m", collection.id)
    assert store.access("m", "api", collection.id) is None
    with pytest.raises(HubError, match="no rights"):
        store.revoke("m", "feed")
    with pytest.raises(HubError, match="no member"):
        store.grant("ghost", "feed", read=True, write=False)
    with pytest.raises(HubError, match="--read, --write"):
        store.grant("m", "feed", read=False, write=False)


def test_secrets_are_kept_only_as_keyed_hashes(store: HubStore, tmp_path: Path) -> None:
    _member, secret = store.add_member("acme")
    assert store.authenticate("acme", secret) == "acme" and store.authenticate(None, secret) == "acme"
    assert store.authenticate("other", secret) is None
    assert store.authenticate("acme", secret[:-1] + ("x" if secret[-1] != "x" else "y")) is None
    assert secret.encode() not in (tmp_path / "hub.db").read_bytes()
    with pytest.raises(HubError, match="exists already"):
        store.add_member("acme")
    with pytest.raises(HubError, match="must be 1 to 64"):
        store.add_member("no:colons")


def test_only_the_member_that_shared_an_object_first_adds_versions_of_it(store: HubStore) -> None:
    collection = store.create_collection("feed").id
    genuine = indicator(1)
    assert store.add_objects(collection, "provider-a", admitted(as_json(genuine)))[0].new
    newer = as_json(genuine.new_version(modified="2099-01-01T00:00:00.000Z"))
    (forged,) = store.add_objects(collection, "provider-m", admitted(newer))
    assert not forged.new and forged.refused is not None and "another member" in forged.refused
    # The last version readers get is still the genuine one; its creator can still update it.
    versions = [r.version for r in store.objects(collection, query(match_version="all")).records]
    assert versions == [as_json(genuine)[0]["modified"]]
    assert store.add_objects(collection, "provider-a", admitted(newer))[0].new
