"""Events in the exported shape of docs/events.md (schema version 1), serialised with orjson."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from distillguard.simulate.calls import Call
from distillguard.simulate.clock import Rfc3339

SCHEMA_VERSION = 1
UPSTREAM = "vllm"
_MASK44 = (1 << 44) - 1


def event_id(ts_us: int, account_index: int, seq: int) -> str:
    """``req_`` + 13 hex digits of microseconds + 11 hex digits, like the gateway's ids (they sort by time).

    The gateway's tail is random; here it is a bijection of (account, sequence number), so ids are unique by
    construction (for fewer than 2**18 accounts and 2**26 events per account) and the output stays reproducible.
    """
    x = ((account_index << 26) | (seq & 0x3FFFFFF)) & _MASK44
    x = (x * 0x9E3779B97F5) & _MASK44  # odd multiplier: a bijection modulo 2**44
    x ^= x >> 21
    x = (x * 0xC2B2AE3D27D) & _MASK44
    return f"req_{ts_us:013x}{x:011x}"


def prompt_tokens(call: Call) -> int:
    """The gateway's estimate: about four bytes per token plus a few tokens of framing per message."""
    body = call.body
    messages = body.get("messages")
    if messages is not None:
        size = sum(len(str(m.get("content") or "").encode()) for m in messages)
        tokens = size // 4 + 4 * len(messages) + 3
    else:
        tokens = len(str(body.get("prompt", "")).encode()) // 4 + 1
    if "tools" in body:
        tokens += len(orjson.dumps(body["tools"])) // 4
    return max(1, tokens)


class EventEncoder:
    __slots__ = ("_fmt",)

    def __init__(self) -> None:
        self._fmt = Rfc3339()

    def encode(
        self,
        *,
        event_id: str,
        ts_us: int,
        account_id: str,
        org_id: str | None,
        call: Call,
        status: int,
        usage: tuple[int, int] | None,
        finish_reason: str | None,
        text: str | None,
        latency_ms: float,
        ttft_ms: float | None,
        error_code: str | None,
        extra: dict[str, Any] | None,
    ) -> bytes:
        return orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "event_id": event_id,
                "ts": self._fmt(ts_us),
                "account_id": account_id,
                "key_id": call.key_id,
                "org_id": org_id,
                # No HTTP-stack fingerprints: the simulator does not model header order or TLS.
                "client": {"ip": call.ip, "user_agent": call.user_agent, "fingerprint": None, "tls": None},
                "endpoint": call.endpoint,
                "model": call.body.get("model"),
                "upstream": UPSTREAM,
                "stream": call.stream,
                "request": call.body,
                "response": {
                    "status": status,
                    "usage": None if usage is None else {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
                    "finish_reason": finish_reason,
                    "text": text,
                    "text_sha256": None if text is None else hashlib.sha256(text.encode()).hexdigest(),
                    "latency_ms": latency_ms,
                    "ttft_ms": ttft_ms,
                    "error_code": error_code,
                },
                "extra": extra,
            }
        )
