"""Server-sent events from the upstream: split into whole events, and read what the event log needs from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

_SEPARATORS = (b"\n\n", b"\r\n\r\n")
# Changes a parsed stream chunk in place; True when it changed it.
Transform = Callable[[dict[str, Any]], bool]


class SSESplitter:
    """Feed raw bytes, get back complete events (each with its trailing blank line)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        events = []
        while True:
            cut = -1
            sep_len = 0
            for sep in _SEPARATORS:
                at = buffer.find(sep)
                if at != -1 and (cut == -1 or at < cut):
                    cut, sep_len = at, len(sep)
            if cut == -1:
                break
            events.append(buffer[: cut + sep_len])
            buffer = buffer[cut + sep_len :]
        self._buffer = buffer
        return events

    @property
    def remainder(self) -> bytes:
        return self._buffer


def event_data(event: bytes) -> bytes | None:
    """The joined ``data:`` payload of one event, or None when it has none."""
    parts = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            parts.append(line[5:].lstrip(b" "))
    return b"\n".join(parts) if parts else None


class CompletionTap:
    """Collects text, finish reason and usage from a completion, streamed chunk by chunk or whole."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.error: dict[str, Any] | None = None

    def chunk(self, payload: dict[str, Any]) -> bool:
        """Take one streamed chunk; True when it is a usage-only chunk (no choices)."""
        if "error" in payload and isinstance(payload["error"], dict):
            self.error = payload["error"]
            return False
        choices = payload.get("choices")
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage(usage)
        if not choices:
            return usage is not None
        first = choices[0]
        if first.get("index", 0) == 0:
            if self.chat:
                delta = first.get("delta") or {}
                content = delta.get("content")
            else:
                content = first.get("text")
            if isinstance(content, str):
                self.parts.append(content)
            if first.get("finish_reason"):
                self.finish_reason = first["finish_reason"]
        return False

    def whole(self, body: bytes) -> None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage(usage)
        choices = payload.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            first = choices[0]
            content = (first.get("message") or {}).get("content") if self.chat else first.get("text")
            if isinstance(content, str):
                self.parts.append(content)
            self.finish_reason = first.get("finish_reason")

    def _usage(self, usage: dict[str, Any]) -> None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            self.prompt_tokens = prompt
        if isinstance(completion, int):
            self.completion_tokens = completion

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class ChunkRelay:
    """What the gateway does with each network read of a streamed completion: split it into events, parse each
    chunk, let ``transform`` change it in place (degrade, watermark; the event is serialised again only when it
    returns True), hand it to the tap, and keep the usage-only chunk from a client that did not ask for usage.
    What the client gets is what the event log keeps: the tap sees the chunk after the transform."""

    def __init__(self, tap: CompletionTap, transform: Transform | None, hide_usage: bool) -> None:
        self.splitter = SSESplitter()
        self.tap = tap
        self.transform = transform
        self.hide_usage = hide_usage
        self.last: dict[str, Any] | None = None  # the newest chunk, a template for events the gateway adds

    def feed(self, data: bytes) -> bytes | None:
        """The bytes to send the client for one read (None when there is nothing to send yet)."""
        out = []
        for sse in self.splitter.feed(data):
            payload = event_data(sse)
            if payload is not None and payload != b"[DONE]":
                try:
                    chunk = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    chunk = None
                if isinstance(chunk, dict):
                    self.last = chunk
                    if self.transform is not None and self.transform(chunk):
                        sse = b"data: " + orjson.dumps(chunk) + b"\n\n"
                    if self.tap.chunk(chunk) and self.hide_usage:
                        continue
            out.append(sse)
        if not out:
            return None
        return b"".join(out) if len(out) > 1 else out[0]

    @property
    def remainder(self) -> bytes:
        return self.splitter.remainder
