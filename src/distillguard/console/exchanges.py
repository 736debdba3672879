"""A stored call as a reviewer reads it: the messages sent, the answer as the event log kept it (in full,
truncated or only its hash, per ``events.text_mode``), and what the gateway did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from distillguard.config import EventsConfig

# Characters of one message or answer shown before the rest is folded away (the page stays light).
SHOWN_CHARS = 4000
PARAMETERS = ("model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "logprobs", "top_logprobs")


@dataclass
class Message:
    role: str
    text: str


@dataclass
class Exchange:
    event_id: str
    ts_us: int
    endpoint: str
    model: str | None
    status: int
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    error_code: str | None
    client_ip: str | None
    user_agent: str | None
    key_id: str | None
    messages: list[Message] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None
    # How the answer was kept: "full", "truncated", "hashed" (answer None, sha256 set) or "not stored".
    answer_kept: str = "not stored"
    answer_sha256: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    unparsed: str | None = None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones, name the others
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, Mapping):
                parts.append(f"[{part.get('type', 'part')}]")
        return "\n".join(parts)
    return "" if content is None else orjson.dumps(content).decode()


def exchange(row: Mapping[str, Any], events: EventsConfig) -> Exchange:
    """One event row (``EventLogView.recent``) for display."""
    ex = Exchange(
        event_id=row["event_id"],
        ts_us=row["ts_us"],
        endpoint=row["endpoint"],
        model=row["model"],
        status=row["status"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        latency_ms=row["latency_ms"],
        error_code=row["error_code"],
        client_ip=row["client_ip"],
        user_agent=row["user_agent"],
        key_id=row["key_id"],
    )
    try:
        body = orjson.loads(row["request"])
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "_unparsed" in body:
        ex.unparsed = str(body["_unparsed"])
    elif isinstance(body, dict):
        messages = body.get("messages")
        if isinstance(messages, list):
            ex.messages = [
                Message(str(m.get("role", "?")), _text(m.get("content"))) for m in messages if isinstance(m, Mapping)
            ]
        elif "prompt" in body:
            prompt = body["prompt"]
            texts = prompt if isinstance(prompt, list) else [prompt]
            ex.messages = [Message("prompt", _text(p)) for p in texts]
        ex.parameters = {k: body[k] for k in PARAMETERS if k in body and k != "model"}
    text, sha = row["text"], row["text_sha256"]
    if text is not None:
        ex.answer = text
        truncated = events.text_mode == "truncated" and len(text) >= events.truncate_chars
        ex.answer_kept = "truncated" if truncated else "full"
    elif sha:
        ex.answer_kept = "hashed"
    ex.answer_sha256 = sha
    extra = orjson.loads(row["extra"]) if row["extra"] else {}
    if isinstance(extra, dict):
        ex.response = extra
    return ex
