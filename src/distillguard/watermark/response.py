"""The text watermark applied to completion responses in the gateway: whole JSON answers and SSE streams.

Streams are marked as they pass: each choice has its own engine, a chunk's text is replaced by what the engine can
release, and what it holds back (the words of a possible site, at most a short phrase) goes out with the choice's
next chunk, at the latest with its ``finish_reason`` chunk.
"""

from __future__ import annotations

from typing import Any

import orjson

from distillguard.watermark.text import LEVELS, SCHEME, Engine, Strength, TextKey


class ResponseWatermarker:
    def __init__(self, key: TextKey, strength: Strength, chat: bool, spacing: bool = True) -> None:
        self.key = key
        self.strength = strength
        self.spacing = spacing
        self._chat = chat
        self._field = "content" if chat else "text"
        self._engines: dict[int, Engine] = {}

    def _engine(self, index: int) -> Engine:
        engine = self._engines.get(index)
        if engine is None:
            engine = self._engines[index] = Engine(self.key, LEVELS[self.strength], self.spacing)
        return engine

    def summary(self) -> dict[str, Any]:
        """What the event log keeps: which key and strength, how many sites and how many were rewritten."""
        return {
            "scheme": SCHEME,
            "key_id": self.key.key_id,
            "scope": self.key.scope,
            "strength": self.strength,
            "sites": sum(len(e.sites) for e in self._engines.values()),
            "changed": sum(e.changed for e in self._engines.values()),
        }

    def whole(self, body: bytes) -> bytes:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list):
            return body
        changed = False
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            holder = choice.get("message") if self._chat else choice
            field = self._field
            if not isinstance(holder, dict) or not isinstance(holder.get(field), str):
                continue
            engine = self._engine(_index(choice, position))
            marked = engine.feed(holder[field]) + engine.flush()
            if marked != holder[field]:
                holder[field] = marked
                changed = True
        return orjson.dumps(payload) if changed else body

    def chunk(self, payload: dict[str, Any]) -> bool:
        """Mark one parsed stream chunk in place; True when it changed."""
        # Nearly every chunk of a chat stream is one choice whose delta carries a piece of text: that shape takes
        # the short way (docs/watermark.md, "Speed"), every other shape the loop below.
        if self._chat:
            try:
                choices = payload["choices"]
                [choice] = choices
                holder = choice["delta"]
                text = holder["content"]
            except (KeyError, TypeError, ValueError):
                pass
            else:
                index = choice.get("index", 0)
                if (
                    type(choices) is list
                    and type(text) is str
                    and type(index) is int
                    and choice.get("finish_reason") is None
                ):
                    engine = self._engines.get(index) or self._engine(index)
                    out = engine.feed(text)
                    if out == text:
                        return False
                    holder["content"] = out
                    return True
        return self._chunk(payload)

    def _chunk(self, payload: dict[str, Any]) -> bool:
        """``chunk`` for every shape of chunk: any number of choices, legacy completions, the last chunk."""
        choices = payload.get("choices")
        if not isinstance(choices, list):
            return False
        changed = False
        field = self._field
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            holder = choice.get("delta") if self._chat else choice
            if not isinstance(holder, dict):
                continue
            text = holder.get(field)
            finishing = choice.get("finish_reason") is not None
            if isinstance(text, str):
                engine = self._engine(_index(choice, position))
                out = engine.feed(text)
                if finishing:
                    out += engine.flush()
                if out != text:
                    holder[field] = out
                    changed = True
            elif finishing:
                out = self._engine(_index(choice, position)).flush()
                if out:
                    holder[field] = out
                    changed = True
        return changed

    def tail(self, template: dict[str, Any] | None) -> list[bytes]:
        """SSE events for text still held when a stream ended without a ``finish_reason`` (an upstream fault)."""
        events = []
        for index, engine in sorted(self._engines.items()):
            rest = engine.flush()
            if not rest:
                continue
            choice: dict[str, Any] = {"index": index, "finish_reason": None}
            if self._chat:
                choice["delta"] = {"content": rest}
            else:
                choice["text"] = rest
            chunk = {k: v for k, v in (template or {}).items() if k in ("id", "object", "created", "model")}
            chunk["choices"] = [choice]
            events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return events


def _index(choice: dict[str, Any], position: int) -> int:
    index = choice.get("index")
    return index if isinstance(index, int) else position
