"""Server-sent events from the upstream: split into whole events, and read what the event log needs from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from distillguard.watermark.stream import Ready, StreamMarker

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
        if not isinstance(choices, list) or not choices:
            return not choices and usage is not None
        first = choices[0]
        if not isinstance(first, dict):
            return False
        index = first.get("index")
        if not isinstance(index, int) or index == 0:  # the first choice (no index: the first in the list)
            if self.chat:
                delta = first.get("delta")
                content = delta.get("content") if isinstance(delta, dict) else None
            else:
                content = first.get("text")
            if isinstance(content, str):
                self.parts.append(content)
            if first.get("finish_reason"):
                self.finish_reason = first["finish_reason"]
        return False

    def delta(self, text: str, payload: dict[str, Any]) -> None:
        """``chunk`` for a chunk known to hold one choice, the first, with ``text`` and no ``finish_reason``."""
        if "error" in payload and isinstance(payload["error"], dict):
            self.error = payload["error"]
            return
        self.parts.append(text)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage(usage)

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
    chunk, let ``transform`` change it in place (degrade; True when it did), let ``marker`` watermark it (it holds
    each event until the watermark has released its text, and forwards it as it came unless a site in it was
    rewritten), serialise again only the chunks that changed, hand each to the tap, and keep the usage-only chunk
    from a client that did not ask for usage. What the client gets is what the event log keeps: the tap sees each
    chunk as it goes out."""

    def __init__(
        self, tap: CompletionTap, transform: Transform | None, hide_usage: bool, marker: StreamMarker | None = None
    ) -> None:
        self.splitter = SSESplitter()
        self.tap = tap
        self.transform = transform
        self.marker = marker
        self.hide_usage = hide_usage
        self.last: dict[str, Any] | None = None  # the newest chunk, a template for events the gateway adds
        self.done = False  # [DONE] went out: the client has the whole answer

    def feed(self, data: bytes) -> bytes | None:
        """The bytes to send the client for one read (None when there is nothing to send yet)."""
        ready: list[Ready] = []
        marker = self.marker
        for event in self.splitter.feed(data):
            payload = event_data(event)
            sse: bytes | None = event  # None: the chunk changed, serialised again on the way out
            chunk = None
            if payload is not None and payload != b"[DONE]":
                try:
                    parsed = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    chunk = self.last = parsed
                    if self.transform is not None and self.transform(chunk):
                        sse = None
            elif payload == b"[DONE]":
                if marker is not None:
                    marker.finish(ready, self.last)
                self.done = True
            if marker is not None:
                marker.event(sse, chunk, ready)
            else:
                ready.append((sse, chunk, None))
        return self._out(ready)

    def close(self, broken: bool = False) -> bytes | None:
        """The upstream ended the stream: what is still held (an answer cut off before its ``finish_reason``), and
        an unfinished last event unless the stream ``broken`` off (its bytes are cut short then)."""
        ready: list[Ready] = []
        if self.marker is not None:
            self.marker.finish(ready, self.last)
        out = self._out(ready) or b""
        if not broken and self.splitter.remainder.strip():
            out += self.splitter.remainder
        return out or None

    def _out(self, ready: list[Ready]) -> bytes | None:
        out = []
        for sse, chunk, text in ready:
            if chunk is not None:
                if text is not None:
                    self.tap.delta(text, chunk)  # one choice, its text, no finish_reason: the marker found it so
                else:
                    if sse is None:
                        sse = b"data: " + orjson.dumps(chunk) + b"\n\n"
                    if self.tap.chunk(chunk) and self.hide_usage:
                        continue
            if sse is not None:
                out.append(sse)
        if not out:
            return None
        return b"".join(out) if len(out) > 1 else out[0]
