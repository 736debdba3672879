"""Keys: 401 in OpenAI's shape for missing, malformed, wrong and revoked keys; every attempt is logged."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway, cli

pytestmark = pytest.mark.e2e
BODY: CompletionCreateParamsNonStreaming = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer not-a-distillguard-key", "Bearer sk-dg-0123456789ab_wrongsecret"],
)
def test_bad_keys_get_401_in_openai_shape_and_are_logged(gateway: Gateway, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=BODY, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error" and error["message"]
    [event] = gateway.events()
    assert event["response"]["status"] == 401 and event["account_id"] == "_unauthenticated"
    assert event["request"] == BODY


def test_a_right_key_with_a_changed_secret_is_refused(gateway: Gateway) -> None:
    key = gateway.keys["tester"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.base_url, api_key=tampered, max_retries=0).chat.completions.create(**BODY)


def test_revoked_key_stops_working(start_gateway: StartGateway) -> None:
    gw = start_gateway(server="auth_cache_ttl_s = 0")
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    c.chat.completions.create(**BODY)
    [key] = _keys(gw)
    cli("keys", "revoke", key["key_id"], data_dir=gw.data_dir)
    assert _keys(gw)[0]["revoked_at"] is not None
    with pytest.raises(openai.AuthenticationError) as refused:
        c.chat.completions.create(**BODY)
    assert key["key_id"] in refused.value.message


def test_keys_are_stored_only_as_keyed_hashes(gateway: Gateway) -> None:
    key = gateway.keys["tester"]
    secret_part = key.split("_", 1)[1]
    for path in gateway.data_dir.iterdir():
        if path.is_file():
            assert secret_part.encode() not in path.read_bytes(), path
    assert secret_part not in gateway.log()


def _keys(gw: Gateway) -> list[dict[str, str]]:
    return list(json.loads(cli("keys", "list", "--json", data_dir=gw.data_dir).stdout))
