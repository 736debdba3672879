"""Operational surface: /healthz, Prometheus /metrics, JSON logs, the trusted-proxy rule for client IPs."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.e2e.conftest import StartGateway
from tests.support.processes import Gateway

pytestmark = pytest.mark.e2e
BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_healthz_and_metrics(start_gateway: StartGateway) -> None:
    gw = start_gateway(config='[limits]\ndefault_tier = "t"\n[limits.tiers.t.account]\nrequests = ["1/minute"]\n')
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    c.chat.completions.create(**BODY)  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(**BODY)  # type: ignore[call-overload]
    assert httpx.get(f"{gw.url}/healthz").json()["status"] == "ok"
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'distillguard_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0' in metrics
    assert 'distillguard_requests_total{endpoint="/v1/chat/completions",status="429"} 1.0' in metrics
    assert 'distillguard_rate_limited_total{kind="requests",scope="account"} 1.0' in metrics
    assert "distillguard_request_duration_seconds_bucket" in metrics
    assert "distillguard_event_queue_depth" in metrics


def test_requests_in_flight(gateway: Gateway) -> None:
    """The gauge counts a stream being relayed (and not the scrape that reads it); back to 0 once it is logged."""

    def in_flight() -> str:
        lines = httpx.get(f"{gateway.url}/metrics").text.splitlines()
        return next(line for line in lines if line.startswith("distillguard_requests_in_flight "))

    assert in_flight() == "distillguard_requests_in_flight 0.0"
    c = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys["tester"], max_retries=0)
    body = {**BODY, "model": "mock-fault-trickle", "stream": True, "max_tokens": 8}
    stream = c.chat.completions.create(**body)  # type: ignore[call-overload]
    next(iter(stream))
    assert in_flight() == "distillguard_requests_in_flight 1.0"
    list(stream)
    gateway.settle()
    # Logged once it ended (its status can read 499: the SDK may hang up right after [DONE], before the relay ends).
    assert len(gateway.events()) == 1


def test_logs_are_json_lines_without_secrets(gateway: Gateway) -> None:
    openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys["tester"]).chat.completions.create(**BODY)  # type: ignore[call-overload]
    lines = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]
    assert any(rec["message"] == "gateway started" for rec in lines)
    assert all({"ts", "level", "logger", "message"} <= set(rec) for rec in lines)
    assert "upstream-secret" not in gateway.log() and gateway.keys["tester"] not in gateway.log()


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        ([], "203.0.113.7", "127.0.0.1"),  # nobody trusted: the header is ignored
        (["127.0.0.1/32"], "203.0.113.7", "203.0.113.7"),
        (["127.0.0.1/32", "10.0.0.0/8"], "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),
        (["127.0.0.1/32"], "garbage", "127.0.0.1"),
    ],
)
def test_client_ip_follows_the_trusted_proxy_rule(
    start_gateway: StartGateway, trusted: list[str], forwarded: str, expected: str
) -> None:
    gw = start_gateway(server=f"trusted_proxies = {json.dumps(trusted)}")
    headers = {"authorization": f"Bearer {gw.keys['tester']}", "x-forwarded-for": forwarded}
    assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=headers).status_code == 200
    [event] = gw.events()
    assert event["client"]["ip"] == expected


@pytest.mark.parametrize(("trusted", "believed"), [(["127.0.0.1/32"], True), ([], False)])
def test_client_fingerprints_are_logged(start_gateway: StartGateway, trusted: list[str], believed: bool) -> None:
    ja4 = "t13d1516h2_8daaf6152771_b186095e22b6"
    gw = start_gateway(server=f'trusted_proxies = {json.dumps(trusted)}\ntls_fingerprint_header = "X-JA4"')
    c = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0, default_headers={"x-ja4": ja4})
    c.chat.completions.create(**BODY)  # type: ignore[call-overload]
    c.chat.completions.create(**BODY)  # type: ignore[call-overload]
    headers = {"authorization": f"Bearer {gw.keys['tester']}", "x-ja4": "not a fingerprint!"}
    assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=headers).status_code == 200
    sdk, again, script = (e["client"] for e in gw.events())
    # One client's header order is one fingerprint; another HTTP stack's is another.
    assert sdk["fingerprint"] == again["fingerprint"] != script["fingerprint"]
    assert sdk["fingerprint"].startswith("ho:")
    # The TLS fingerprint is believed only from a trusted proxy, and only when it looks like one.
    assert sdk["tls"] == (ja4 if believed else None)
    assert script["tls"] is None
