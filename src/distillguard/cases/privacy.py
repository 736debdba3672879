"""What of a customer's exchanges and address an evidence pack may carry (``[cases]``, docs/cases.md).

A sample exchange leaves as its prompt messages and answer (full, cut to ``truncate_chars``, or none at all), the
request's sampling parameters (never its tool definitions or other free text), and its metadata: time, model,
status, token counts, signals and the answer's SHA-256 (which lets a reader match a leaked text without the pack
holding it). Client addresses leave in full or as their network prefix. The event log may itself have kept less:
an answer it stored only as a hash stays a hash.
"""

from __future__ import annotations

from typing import Any

from distillguard.config import CasesConfig, EventsConfig
from distillguard.detect.signals.request import content_text
from distillguard.intel.privacy import ip_prefix

# Request fields that carry no customer text: kept as they are.
PARAMETERS = (
    "model",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "logprobs",
    "top_logprobs",
    "stream",
    "seed",
    "reasoning_effort",
    "presence_penalty",
    "frequency_penalty",
)


def describe(cases: CasesConfig, events: EventsConfig) -> dict[str, Any]:
    """The privacy rules a pack was written under, for its reader (``case.json``'s ``privacy``)."""
    kept = {
        "full": "in full",
        "truncated": f"cut to their first {events.truncate_chars} characters",
        "hashed": "only as a SHA-256 hash (no text)",
    }[events.text_mode]
    shown = {
        "full": "prompts and answers as the event log kept them",
        "truncated": f"prompts and answers cut to {cases.truncate_chars} characters each",
        "none": "no prompt or answer text (times, models, token counts, signals and answer hashes only)",
    }[cases.exchanges]
    return {
        "exchanges": cases.exchanges,
        "truncate_chars": cases.truncate_chars if cases.exchanges == "truncated" else None,
        "client_ips": cases.client_ips,
        "event_log_text_mode": events.text_mode,
        "event_log_truncate_chars": events.truncate_chars if events.text_mode == "truncated" else None,
        "statement": (
            f"Sample exchanges: {shown}. The event log keeps answers {kept} (as currently configured; older "
            f"events follow the setting of their day). Client addresses: "
            + ("in full." if cases.client_ips == "full" else "reduced to their network (/24 IPv4, /48 IPv6).")
        ),
    }


def _cut(text: str, mode: str, limit: int) -> dict[str, Any]:
    if mode == "none":
        return {"text": None, "chars": len(text)}
    if mode == "truncated" and len(text) > limit:
        return {"text": text[:limit], "chars": len(text), "truncated": True}
    return {"text": text, "chars": len(text)}


def _messages(request: Any) -> list[tuple[str, str]]:
    if not isinstance(request, dict):
        return []
    if "_unparsed" in request:
        return [("unparsed request", str(request["_unparsed"]))]
    if isinstance(request.get("messages"), list):
        return [
            (str(m.get("role", "?")), content_text(m.get("content")))
            for m in request["messages"]
            if isinstance(m, dict)
        ]
    prompt = request.get("prompt")
    if isinstance(prompt, list):
        return [("prompt", content_text(p)) for p in prompt]
    return [("prompt", content_text(prompt))] if prompt is not None else []


def redact(exchange: dict[str, Any], cases: CasesConfig) -> dict[str, Any]:
    """The exchange as a pack carries it under ``cases`` (``eventlog.samples`` gives it as stored)."""
    mode, limit = cases.exchanges, cases.truncate_chars
    request = exchange["request"]
    params = {k: request[k] for k in PARAMETERS if isinstance(request, dict) and k in request}
    if isinstance(request, dict) and request.get("tools"):
        params["tools"] = len(request["tools"]) if isinstance(request["tools"], list) else 1
    response = exchange["response"]
    stored = response.get("text")
    answer: dict[str, Any] = _cut(stored, mode, limit) if stored is not None else {"text": None, "chars": None}
    answer["stored"] = "text" if stored is not None else "hashed" if response.get("text_sha256") else "nothing"
    answer["sha256"] = response.get("text_sha256")
    ip = exchange["client"].get("ip")
    return {
        **{k: v for k, v in exchange.items() if k not in ("request", "response", "client")},
        "client": {
            "ip": ip if cases.client_ips == "full" else ip_prefix(ip),
            "user_agent": exchange["client"].get("user_agent"),
        },
        "request": {
            "parameters": params,
            "messages": [{"role": role, **_cut(text, mode, limit)} for role, text in _messages(request)],
        },
        "response": answer,
    }
