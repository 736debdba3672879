"""Every event has the exported shape of docs/events.md, and the run's files agree with each other."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from datetime import UTC, datetime, timedelta

from distillguard.events.schema import Event
from distillguard.simulate.models import MODELS
from distillguard.simulate.ratelimit import TIERS
from distillguard.timefmt import parse_rfc3339
from tests.simulate.conftest import Run

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
EVENT_ID = re.compile(r"^req_[0-9a-f]{24}$")
HEX12 = re.compile(r"^[0-9a-f]{12}$")
TOP_FIELDS = {
    "schema_version", "event_id", "ts", "account_id", "key_id", "org_id", "client", "endpoint", "model", "upstream",
    "stream", "request", "response", "extra",
}  # fmt: skip
RESPONSE_FIELDS = {
    "status", "usage", "finish_reason", "text", "text_sha256", "latency_ms", "ttft_ms", "error_code",
}  # fmt: skip
ERRORS = {
    400: {"invalid_value", "integer_below_min_value", "integer_above_max_value", "invalid_type"},
    404: {"model_not_found"},
    429: {"rate_limit_exceeded"},
    499: {"client_disconnected"},
    502: {"upstream_error"},
    504: {"upstream_timeout"},
}


def test_every_event_has_the_documented_shape(run: Run) -> None:
    assert len(run.events) > 10_000
    for e in run.events:
        assert set(e) == TOP_FIELDS
        assert e["schema_version"] == 1
        assert EVENT_ID.match(e["event_id"])
        assert TS.match(e["ts"])
        assert e["account_id"] in run.account_by_id
        assert HEX12.match(e["key_id"])
        assert e["org_id"] == run.account_by_id[e["account_id"]]["org_id"]
        ipaddress.ip_address(e["client"]["ip"])
        assert isinstance(e["client"]["user_agent"], str) and e["client"]["user_agent"]
        assert e["endpoint"] in ("/v1/chat/completions", "/v1/completions")
        assert e["model"] in MODELS
        assert e["model"] == e["request"]["model"]
        assert isinstance(e["stream"], bool)
        assert e["stream"] == bool(e["request"].get("stream", False))
        assert ("messages" in e["request"]) == (e["endpoint"] == "/v1/chat/completions")
        assert ("prompt" in e["request"]) == (e["endpoint"] == "/v1/completions")
        assert set(e["response"]) == RESPONSE_FIELDS
        assert isinstance(e["response"]["latency_ms"], float)
        assert e["response"]["latency_ms"] > 0


def test_responses_are_consistent_with_their_status(run: Run) -> None:
    statuses = set()
    for e in run.events:
        r = e["response"]
        statuses.add(r["status"])
        if r["status"] == 200:
            assert r["error_code"] is None and e["extra"] is None
            assert r["finish_reason"] in ("stop", "length", "tool_calls")
            usage = r["usage"]
            assert usage["prompt_tokens"] >= 1 and usage["completion_tokens"] >= 1
            max_tokens = e["request"].get("max_tokens")
            if isinstance(max_tokens, int):
                assert usage["completion_tokens"] <= max_tokens
            if r["finish_reason"] == "length":
                assert usage["completion_tokens"] == max_tokens
            if r["text"] is None:
                assert r["finish_reason"] == "tool_calls" and r["text_sha256"] is None
            else:
                assert r["text_sha256"] == hashlib.sha256(r["text"].encode()).hexdigest()
                if r["finish_reason"] == "stop":
                    # Usage follows the text (about four bytes per token).
                    assert abs(usage["completion_tokens"] - len(r["text"].encode()) // 4) <= 1
            assert (r["ttft_ms"] is not None) == e["stream"]
        else:
            assert r["error_code"] in ERRORS[r["status"]]
            assert r["usage"] is None and r["text"] is None and r["text_sha256"] is None
        if r["status"] == 429:
            assert e["extra"]["limit"].startswith("account requests: ")
            assert isinstance(e["extra"]["retry_after_ms"], int) and e["extra"]["retry_after_ms"] > 0
    assert {200, 429} <= statuses


def test_events_round_trip_through_the_projects_reader(run: Run) -> None:
    for e in run.events[:: max(1, len(run.events) // 2000)]:
        back = Event.from_json(e).to_json()
        # The reader goes through a float timestamp, which may shift the last microsecond.
        assert abs(parse_rfc3339(back.pop("ts")) - parse_rfc3339(e["ts"])) <= timedelta(microseconds=1)
        # The simulator writes what a producer without detection writes: no signals (analyze computes them).
        assert back.pop("signals") is None and "signals" not in e
        assert back == {k: v for k, v in e.items() if k != "ts"}


def test_events_are_in_time_order_and_ids_unique(run: Run) -> None:
    stamps = [e["ts"] for e in run.events]
    assert stamps == sorted(stamps)  # same-width RFC 3339 strings sort by time
    ids = [e["event_id"] for e in run.events]
    assert len(set(ids)) == len(ids)


def test_events_fall_in_the_span_and_after_account_creation(run: Run) -> None:
    start = run.config.start
    end = start + timedelta(days=run.config.days)
    created = {a["account_id"]: parse_rfc3339(a["created_at"]) for a in run.accounts}
    for e in run.events[:: max(1, len(run.events) // 5000)]:
        ts = parse_rfc3339(e["ts"])
        assert start <= ts < end
        assert ts >= created[e["account_id"]]


def test_accounts_and_labels_agree(run: Run) -> None:
    assert [a["account_id"] for a in run.accounts] == [r["account_id"] for r in run.labels]
    assert len(run.accounts) == run.config.accounts == run.result.accounts
    assert len({a["account_id"] for a in run.accounts}) == len(run.accounts)
    for a in run.accounts:
        assert set(a) == {
            "account_id", "created_at", "org_id", "tier", "verified", "payment_fingerprint", "email_domain", "country",
        }  # fmt: skip
        assert a["tier"] in TIERS
        assert isinstance(a["verified"], bool)
        assert TS.match(a["created_at"])
        assert datetime.fromisoformat(a["created_at"].replace("Z", "+00:00")).tzinfo == UTC
    for r in run.labels:
        assert set(r) == {"account_id", "label", "population", "campaign_id"}
        assert r["label"] in ("benign", "attack")
        assert (r["campaign_id"] is not None) == (r["population"] == "hydra_campaign")
    attack = sum(1 for r in run.labels if r["label"] == "attack")
    assert attack == run.result.attack_accounts == round(run.config.accounts * run.config.attack_share)


def test_account_order_does_not_group_populations(run: Run) -> None:
    # Accounts are shuffled: the first 30 rows are not all of one population.
    assert len({r["population"] for r in run.labels[:30]}) >= 3
