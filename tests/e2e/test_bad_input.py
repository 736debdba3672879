"""Bad input gets a 4xx in OpenAI's error shape, is logged, and leaves the server unharmed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway, Mock

pytestmark = pytest.mark.e2e
OK = b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}'

CASES = [
    (b'{"model": "mock-gpt", "messages": [', 400, "invalid_json", None),
    (b"\xff\xfe{not utf8", 400, "invalid_encoding", None),
    (b'{"model": "mock-gpt", "messages": "\xc3\x28"}', 400, "invalid_encoding", None),
    (b"[1, 2, 3]", 400, "invalid_json", None),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "missing_required_parameter", "model"),
    (b'{"model": 42, "messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_value", "model"),
    (b'{"model": "mock-gpt", "messages": []}', 400, "invalid_value", "messages"),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "wizard", "content": "x"}]}',
        400,
        "invalid_value",
        "messages[0].role",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": 5}]}',
        400,
        "invalid_type",
        "messages[0].content",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
        400,
        "integer_below_min_value",
        "max_tokens",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10000000000}',
        400,
        "integer_above_max_value",
        "max_tokens",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}',
        400,
        "invalid_type",
        "max_tokens",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "temperature": 9}',
        400,
        "invalid_value",
        "temperature",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "n": 0}',
        400,
        "integer_below_min_value",
        "n",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
        400,
        "invalid_type",
        "stream",
    ),
    (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "stream_options": {}}',
        400,
        "invalid_value",
        "stream_options",
    ),
    (b'{"model": "gpt-unknown", "messages": [{"role": "user", "content": "x"}]}', 404, "model_not_found", "model"),
]


def post(gw: Gateway, body: bytes, path: str = "/chat/completions") -> httpx.Response:
    headers = {"authorization": f"Bearer {gw.keys['tester']}", "content-type": "application/json"}
    return httpx.post(f"{gw.base_url}{path}", content=body, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def strict_gateway(tmp_path_factory: pytest.TempPathFactory, mock_upstream: Mock) -> Iterator[Gateway]:
    from tests.support.processes import running_gateway

    where = tmp_path_factory.mktemp("badinput")
    with running_gateway(
        where,
        mock_upstream.base_url,
        upstream_extra='api_key = "upstream-secret"\nmodels = ["mock-*"]',
        server_extra="max_body_bytes = 4096",
    ) as gw:
        yield gw


@pytest.mark.parametrize(("body", "status", "code", "param"), CASES)
def test_bad_request_is_refused_in_openai_shape(
    strict_gateway: Gateway, body: bytes, status: int, code: str, param: str | None
) -> None:
    response = post(strict_gateway, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param and error["message"]
    assert "Traceback" not in response.text
    assert post(strict_gateway, OK).status_code == 200  # unharmed


def test_oversized_bodies_are_refused_with_and_without_content_length(strict_gateway: Gateway) -> None:
    big = b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "' + b"x" * 10_000 + b'"}]}'
    assert post(strict_gateway, big).json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:
        yield big[:3000]
        yield big[3000:]

    headers = {"authorization": f"Bearer {strict_gateway.keys['tester']}"}
    chunked = httpx.post(f"{strict_gateway.base_url}/chat/completions", content=chunks(), headers=headers)
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "request_too_large"


def test_every_bad_call_is_an_event(start_gateway: StartGateway) -> None:
    gw = start_gateway()
    bodies = [b"{oops", b"\xff", b'{"model": "mock-gpt", "messages": [], "max_tokens": -5}']
    for body in bodies:
        assert post(gw, body).status_code == 400
    events = gw.events()
    assert [e["response"]["status"] for e in events] == [400, 400, 400]
    assert events[0]["request"]["_unparsed"] == "{oops"
    assert events[1]["request"]["_unparsed"] == "\ufffd"
    assert events[2]["request"]["max_tokens"] == -5  # valid JSON is kept as sent
    assert all(e["account_id"] == "tester" for e in events)


def test_unknown_routes_and_methods_answer_in_openai_shape(gateway: Gateway) -> None:
    missing = httpx.get(f"{gateway.base_url}/embeddings")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"
    wrong = httpx.get(f"{gateway.base_url}/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
