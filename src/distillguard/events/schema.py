"""One event per API call: the contract documented in docs/events.md (schema version 1).

The gateway fills an :class:`Event` on the request path (cheap attribute sets, no serialisation); sinks turn it
into rows, and :meth:`Event.to_json` gives the documented JSON object that ``events export`` writes and
``distillguard analyze`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from distillguard.events.signals import RequestSignals, from_object, to_object
from distillguard.timefmt import parse_rfc3339, rfc3339_from_epoch_us

SCHEMA_VERSION = 1
# account_id of calls that did not authenticate (the schema keeps account_id non-null).
UNAUTHENTICATED = "_unauthenticated"


@dataclass(slots=True)
class Event:
    event_id: str
    ts_us: int
    endpoint: str
    # The request body exactly as received: the raw JSON bytes when it parsed, else a {"_unparsed": ...} object.
    request_raw: bytes
    account_id: str = UNAUTHENTICATED
    key_id: str | None = None
    org_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    # The order of the client's request headers ("ho:" + hash) and, when a trusted fronting proxy forwards it,
    # its TLS fingerprint (JA3/JA4): what identifies one harvesting script across keys and proxies.
    client_fingerprint: str | None = None
    client_tls: str | None = None
    model: str | None = None
    upstream: str | None = None
    stream: bool = False
    status: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    text: str | None = None
    text_sha256: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Per-request signals, computed once where the event is made (None when detection is off).
    signals: RequestSignals | None = None

    def to_json(self) -> dict[str, Any]:
        usage = None
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "ts": rfc3339_from_epoch_us(self.ts_us),
            "account_id": self.account_id,
            "key_id": self.key_id,
            "org_id": self.org_id,
            "client": {
                "ip": self.client_ip,
                "user_agent": self.user_agent,
                "fingerprint": self.client_fingerprint,
                "tls": self.client_tls,
            },
            "endpoint": self.endpoint,
            "model": self.model,
            "upstream": self.upstream,
            "stream": self.stream,
            "request": request_object(self.request_raw),
            "response": {
                "status": self.status,
                "usage": usage,
                "finish_reason": self.finish_reason,
                "text": self.text,
                "text_sha256": self.text_sha256,
                "latency_ms": self.latency_ms,
                "ttft_ms": self.ttft_ms,
                "error_code": self.error_code,
            },
            "extra": self.extra or None,
            "signals": to_object(self.signals) if self.signals is not None else None,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Event:
        """Read an event in the documented JSON shape (as written by any producer)."""
        for name in ("event_id", "ts", "account_id", "request"):
            if obj.get(name) is None:
                raise ValueError(f"event is missing required field {name!r}")
        client = obj.get("client") or {}
        response = obj.get("response") or {}
        usage = response.get("usage") or {}
        ts = parse_rfc3339(obj["ts"])
        return cls(
            event_id=str(obj["event_id"]),
            ts_us=int(ts.timestamp() * 1_000_000),
            endpoint=obj.get("endpoint") or "",
            request_raw=orjson.dumps(obj["request"]),
            account_id=str(obj["account_id"]),
            key_id=obj.get("key_id"),
            org_id=obj.get("org_id"),
            client_ip=client.get("ip"),
            user_agent=client.get("user_agent"),
            client_fingerprint=client.get("fingerprint"),
            client_tls=client.get("tls"),
            model=obj.get("model"),
            upstream=obj.get("upstream"),
            stream=bool(obj.get("stream", False)),
            status=int(response.get("status") or 0),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            finish_reason=response.get("finish_reason"),
            text=response.get("text"),
            text_sha256=response.get("text_sha256"),
            latency_ms=response.get("latency_ms"),
            ttft_ms=response.get("ttft_ms"),
            error_code=response.get("error_code"),
            extra=obj.get("extra") or {},
            signals=from_object(obj.get("signals")),
        )


def request_object(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_unparsed": raw.decode("utf-8", "replace")}


def unparsed_request(body: bytes, limit: int = 8192) -> bytes:
    """The stored form of a body that is not JSON: its text (lossily decoded, cut at ``limit``) under ``_unparsed``."""
    return orjson.dumps({"_unparsed": body[:limit].decode("utf-8", "replace"), "_bytes": len(body)})
