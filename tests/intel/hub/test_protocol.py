"""The TAXII media types, size limit and error messages, as a client meets them over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.intel.hub.conftest import MAX_CONTENT_LENGTH, Hub
from tests.intel.hub.samples import indicators
from tests.intel.hub.test_access import TAXII, assert_taxii_error, basic


@pytest.fixture(scope="module")
def setup(hub: Hub) -> dict[str, str]:
    hub.member("proto")
    collection_id = hub.collection("proto-feed", proto="rw")
    return {"objects": hub.objects_url(collection_id)}


@pytest.fixture
def auth(hub: Hub, setup: dict[str, str]) -> dict[str, str]:
    return basic("proto", hub.secrets["proto"])


@pytest.mark.parametrize(
    "accept",
    ["application/json", "application/taxii+json;version=2.0", "text/html", "application/taxii+json;version=2.1;q=0"],
)
def test_unacceptable_accept_is_406(hub: Hub, setup: dict[str, str], auth: dict[str, str], accept: str) -> None:
    for url in (hub.discovery, setup["objects"]):
        body = assert_taxii_error(httpx.get(url, headers={**auth, "Accept": accept}), 406)
        assert "application/taxii+json;version=2.1" in body["description"]


@pytest.mark.parametrize(
    "accept", ["application/taxii+json", "*/*", "application/json, application/taxii+json;version=2.1;q=0.5"]
)
def test_acceptable_accept(hub: Hub, setup: dict[str, str], auth: dict[str, str], accept: str) -> None:
    response = httpx.get(setup["objects"], headers={**auth, "Accept": accept})
    assert response.status_code == 200 and response.headers["content-type"] == TAXII


@pytest.mark.parametrize("content_type", [None, "application/json", "application/taxii+json;version=2.0", "text/plain"])
def test_post_with_wrong_content_type_is_415(
    setup: dict[str, str], auth: dict[str, str], content_type: str | None
) -> None:
    headers = auth | ({"Content-Type": content_type} if content_type else {})
    response = httpx.post(setup["objects"], content=b'{"objects": []}', headers=headers)
    assert_taxii_error(response, 415)


def test_oversized_post_is_413_and_the_limit_is_advertised(
    hub: Hub, setup: dict[str, str], auth: dict[str, str]
) -> None:
    root = httpx.get(hub.root, headers=auth).json()
    assert root["max_content_length"] == MAX_CONTENT_LENGTH
    big = b'{"objects": [' + b",".join([b'{"type": "x"}'] * (MAX_CONTENT_LENGTH // 10)) + b"]}"
    headers = {**auth, "Content-Type": TAXII}
    body = assert_taxii_error(httpx.post(setup["objects"], content=big, headers=headers), 413)
    assert str(MAX_CONTENT_LENGTH) in body["description"]

    # Without a Content-Length (chunked), the hub stops reading at the limit.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    assert_taxii_error(httpx.post(setup["objects"], content=chunks(), headers=headers), 413)
    # Just under the limit is fine.
    fits = {"objects": indicators(3, start=700)}
    assert httpx.post(setup["objects"], json=fits, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"{not json", "not JSON"), (b"[1, 2]", "envelope"), (b'{"objects": {"a": 1}}', "must be a list")],
)
def test_malformed_envelopes_are_400(setup: dict[str, str], auth: dict[str, str], body: bytes, fragment: str) -> None:
    response = httpx.post(setup["objects"], content=body, headers={**auth, "Content-Type": TAXII})
    assert fragment in assert_taxii_error(response, 400)["description"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "many"}, "`limit`"),
        ({"limit": "0"}, "`limit`"),
        ({"added_after": "yesterday"}, "added_after"),
        ({"added_after": "2026-01-01T00:00:00+01:00"}, "added_after"),
        ({"next": "bm90LWEtY3Vyc29y"}, "`next`"),
        ({"match[colour]": "red"}, "match[colour]"),
        ({"match[version]": "2026-13-01T00:00:00Z"}, "match[version]"),
    ],
)
def test_bad_parameters_are_400(
    setup: dict[str, str], auth: dict[str, str], params: dict[str, str], fragment: str
) -> None:
    body = assert_taxii_error(httpx.get(setup["objects"], params=params, headers=auth), 400)
    assert fragment in body["description"]


def test_filters_an_endpoint_does_not_take_are_400(setup: dict[str, str], auth: dict[str, str]) -> None:
    url = setup["objects"] + "indicator--8d2ab7e6-1e29-4c57-9a8d-1a1cbd7a8d2f/versions/"
    body = assert_taxii_error(httpx.get(url, params={"match[version]": "all"}, headers=auth), 400)
    assert "match[spec_version]" in body["description"]


def test_unknown_routes_and_methods_answer_in_taxii(hub: Hub, setup: dict[str, str], auth: dict[str, str]) -> None:
    assert_taxii_error(httpx.get(f"{hub.url}/nowhere", headers=auth), 404)
    assert_taxii_error(httpx.get(f"{hub.url}/taxii2/other-root/", headers=auth), 404)
    assert_taxii_error(httpx.get(f"{hub.url}/taxii2/other-root/collections/", headers=auth), 404)
    response = httpx.put(setup["objects"], headers=auth)
    assert_taxii_error(response, 405)
    assert "GET" in response.headers["allow"] and "POST" in response.headers["allow"]


def test_empty_results_leave_out_optional_lists(setup: dict[str, str], auth: dict[str, str]) -> None:
    response = httpx.get(setup["objects"], params={"match[type]": "malware"}, headers=auth)
    assert response.json() == {"more": False}
    assert "x-taxii-date-added-first" not in response.headers
