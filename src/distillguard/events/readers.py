"""Readers of event logs into compact records: the native schema (docs/events.md) and foreign formats.

A record holds what detection needs of one event. Readers are total: a line they cannot use yields a
:class:`Skip` with the reason, never an exception, so one bad line does not stop an analysis of millions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from distillguard.events.signals import RequestSignals, from_object
from distillguard.timefmt import parse_rfc3339


@dataclass(frozen=True, slots=True)
class Record:
    ts_us: int
    account_id: str
    endpoint: str
    model: str | None
    request: dict[str, Any]
    status: int
    prompt_tokens: int | None
    completion_tokens: int | None
    # Signals stored with the event by a producer of the current SIGNALS_VERSION; None: compute them.
    signals: RequestSignals | None = None
    client: Client | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Where a call came from, as far as the log says: what links the accounts of one campaign (clusters/)."""

    ip: str | None
    user_agent: str | None
    # A fingerprint of the client's HTTP stack (header order, HTTP/2 settings) if the producer has one.
    fingerprint: str | None = None
    # The network's autonomous system, when the producer resolved it (otherwise the clusters derive a prefix).
    asn: int | None = None
    # The client's TLS fingerprint (JA3/JA4) as forwarded by a fronting proxy.
    tls: str | None = None


_NO_CLIENT = Client(None, None)

# What detection replays of one event, compactly:
# (ts_us, account_id, status, prompt_tokens, completion_tokens, model, signals, client)
Row = tuple[int, str, int, int | None, int | None, str | None, RequestSignals, Client | None]


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _client(ip: Any, user_agent: Any, fingerprint: Any = None, asn: Any = None, tls: Any = None) -> Client | None:
    client = Client(_str(ip), _str(user_agent), _str(fingerprint), _int(asn), _str(tls))
    return None if client == _NO_CLIENT else client


def _ts(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(parse_rfc3339(value).timestamp() * 1_000_000)
    except ValueError:
        return None


def _head(line: bytes, ts_field: str) -> tuple[dict[str, Any], str, int] | Skip:
    """The object, its account id and its time, or why the line cannot be used."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Skip("not JSON")
    if not isinstance(obj, dict):
        return Skip("not a JSON object")
    account_id = obj.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        return Skip("missing account_id")
    ts_us = _ts(obj.get(ts_field))
    if ts_us is None:
        return Skip(f"missing or invalid {ts_field}")
    return obj, account_id, ts_us


def native_record(line: bytes) -> Record | Skip:
    """An event in distillguard's own schema (version 1)."""
    head = _head(line, "ts")
    if isinstance(head, Skip):
        return head
    obj, account_id, ts_us = head
    request = obj.get("request")
    if not isinstance(request, dict):
        return Skip("missing request")
    response = _dict(obj.get("response"))
    usage = _dict(response.get("usage"))
    client = _dict(obj.get("client"))
    model = obj.get("model") if isinstance(obj.get("model"), str) else request.get("model")
    endpoint = obj.get("endpoint")
    return Record(
        ts_us=ts_us,
        account_id=account_id,
        endpoint=endpoint if isinstance(endpoint, str) else "/v1/chat/completions",
        model=model if isinstance(model, str) else None,
        request=request,
        status=_int(response.get("status")) or 200,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        signals=from_object(obj.get("signals")),
        client=_client(
            client.get("ip"), client.get("user_agent"), client.get("fingerprint"), client.get("asn"), client.get("tls")
        ),
    )


def glasswally_record(line: bytes) -> Record | Skip:
    """A line of Glasswally's labelled log (docs/detection.md gives the field mapping)."""
    head = _head(line, "timestamp")
    if isinstance(head, Skip):
        return head
    obj, account_id, ts_us = head
    prompt = obj.get("prompt")
    if not isinstance(prompt, str):
        return Skip("missing prompt")
    messages = []
    if isinstance(obj.get("system_prompt"), str):
        messages.append({"role": "system", "content": obj["system_prompt"]})
    messages.append({"role": "user", "content": prompt})
    model = obj.get("model") if isinstance(obj.get("model"), str) else None
    request: dict[str, Any] = {"model": model, "messages": messages}
    if _int(obj.get("max_tokens")) is not None:
        request["max_tokens"] = obj["max_tokens"]
    return Record(
        ts_us=ts_us,
        account_id=account_id,
        endpoint="/v1/chat/completions",
        model=model,
        request=request,
        status=200,
        # The peer logs one token_count per request; it is the nearest thing to the prompt's size.
        prompt_tokens=_int(obj.get("token_count")),
        completion_tokens=None,
        client=_client(obj.get("client_ip"), obj.get("user_agent"), obj.get("h2_settings_fp"), obj.get("asn_number")),
    )


READERS: dict[str, Callable[[bytes], Record | Skip]] = {"native": native_record, "glasswally": glasswally_record}
