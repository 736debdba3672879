"""Who sees what: per-member credentials, per-collection rights, invisible collections, private status resources."""

from __future__ import annotations

import base64

import httpx
import pytest
import requests
from taxii2client.exceptions import AccessError
from taxii2client.v21 import ApiRoot, Collection

from tests.intel.hub.conftest import Hub
from tests.intel.hub.samples import indicators

TAXII = "application/taxii+json;version=2.1"


def basic(member: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{member}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": TAXII}


def assert_taxii_error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert body["http_status"] == str(status) and body["title"] and body["description"]
    assert "Traceback" not in response.text
    return dict(body)


@pytest.fixture(scope="module")
def group(hub: Hub) -> dict[str, str]:
    """owner (rw), reader (r), writer (w) and outsider (no rights) around one collection with two objects."""
    for name in ("owner", "reader", "writer", "outsider"):
        hub.member(name)
    collection_id = hub.collection("shared", owner="rw", reader="r", writer="w")
    hub.collection("elsewhere", outsider="r")  # the outsider is in another collection only
    posted = httpx.post(
        hub.objects_url(collection_id),
        json={"objects": indicators(2, start=300)},
        headers={**basic("owner", hub.secrets["owner"]), "Content-Type": TAXII},
    )
    assert posted.status_code == 202
    return {"collection": collection_id, "object": posted.json()["successes"][0]["id"], "status": posted.json()["id"]}


def test_a_member_sees_only_its_collections(hub: Hub, group: dict[str, str]) -> None:
    aliases = {
        m: {c.alias for c in ApiRoot(hub.root, user=m, password=hub.secrets[m]).collections}
        for m in ("owner", "outsider")
    }
    assert "shared" in aliases["owner"] and "elsewhere" not in aliases["owner"]
    assert aliases["outsider"] == {"elsewhere"}


@pytest.mark.parametrize(
    "path",
    ["", "objects/", "manifest/", "objects/{object}/", "objects/{object}/versions/"],
)
def test_outside_a_collection_it_does_not_exist(hub: Hub, group: dict[str, str], path: str) -> None:
    url = f"{hub.root}collections/{group['collection']}/{path.format(**group)}"
    outsider = basic("outsider", hub.secrets["outsider"])
    assert_taxii_error(httpx.get(url, headers=outsider), 404)
    # The same answer as for a collection that does not exist at all.
    assert_taxii_error(
        httpx.get(url.replace(group["collection"], "5c0fd4f3-0000-4000-8000-000000000000"), headers=outsider), 404
    )
    assert httpx.get(url, headers=basic("owner", hub.secrets["owner"])).status_code == 200


def test_outsider_cannot_post_or_delete_either(hub: Hub, group: dict[str, str]) -> None:
    outsider = {**basic("outsider", hub.secrets["outsider"]), "Content-Type": TAXII}
    url = hub.objects_url(group["collection"])
    assert_taxii_error(httpx.post(url, json={"objects": indicators(1, start=400)}, headers=outsider), 404)
    assert_taxii_error(httpx.delete(f"{url}{group['object']}/", headers=outsider), 404)


def test_write_only_member_can_add_but_not_read(hub: Hub, group: dict[str, str]) -> None:
    writer = basic("writer", hub.secrets["writer"])
    url = hub.objects_url(group["collection"])
    posted = httpx.post(url, json={"objects": indicators(1, start=500)}, headers={**writer, "Content-Type": TAXII})
    assert posted.status_code == 202 and posted.json()["success_count"] == 1
    for path in ("", f"{group['object']}/", f"{group['object']}/versions/", "../manifest/"):
        assert_taxii_error(httpx.get(url + path, headers=writer), 403)
    collection = Collection(
        f"{hub.root}collections/{group['collection']}/", user="writer", password=hub.secrets["writer"]
    )
    assert collection.can_write and not collection.can_read
    with pytest.raises(AccessError):
        collection.get_objects()


def test_read_only_member_cannot_add_or_delete(hub: Hub, group: dict[str, str]) -> None:
    reader = basic("reader", hub.secrets["reader"])
    url = hub.objects_url(group["collection"])
    assert httpx.get(url, headers=reader).json()["objects"]
    refused = httpx.post(url, json={"objects": indicators(1, start=600)}, headers={**reader, "Content-Type": TAXII})
    assert_taxii_error(refused, 403)
    assert_taxii_error(httpx.delete(f"{url}{group['object']}/", headers=reader), 403)
    assert httpx.get(f"{url}{group['object']}/", headers=reader).status_code == 200


def test_status_is_private_to_its_maker(hub: Hub, group: dict[str, str]) -> None:
    url = f"{hub.root}status/{group['status']}/"
    mine = httpx.get(url, headers=basic("owner", hub.secrets["owner"]))
    assert mine.status_code == 200 and mine.json()["success_count"] == 2
    assert_taxii_error(httpx.get(url, headers=basic("reader", hub.secrets["reader"])), 404)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"owner:dg-hub-000000000000_wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:whatever").decode(),
        "Basic not-base64!",
        "Bearer dg-hub-000000000000_wrong",
        "Token abc",
    ],
)
def test_bad_credentials_get_401_with_a_challenge(hub: Hub, group: dict[str, str], authorization: str | None) -> None:
    headers = {"Accept": TAXII} | ({"Authorization": authorization} if authorization else {})
    for url in (hub.discovery, hub.root, hub.objects_url(group["collection"])):
        response = httpx.get(url, headers=headers)
        assert_taxii_error(response, 401)
        assert response.headers["www-authenticate"] == 'Basic realm="distillguard-hub"'


def test_another_members_secret_does_not_work_under_my_name(hub: Hub, group: dict[str, str]) -> None:
    response = httpx.get(hub.discovery, headers=basic("owner", hub.secrets["reader"]))
    assert_taxii_error(response, 401)


def test_bearer_secret_and_removed_member(hub: Hub, group: dict[str, str]) -> None:
    name, secret = hub.member("leaver")
    hub.store.grant(name, group["collection"], read=True, write=False)
    bearer = {"Authorization": f"Bearer {secret}", "Accept": TAXII}
    assert httpx.get(hub.objects_url(group["collection"]), headers=bearer).status_code == 200
    hub.store.remove_member(name)
    assert_taxii_error(httpx.get(hub.objects_url(group["collection"]), headers=bearer), 401)
    with pytest.raises(requests.HTTPError, match="401"):
        ApiRoot(hub.root, user=name, password=secret).refresh()
