"""The text watermark applied to completion responses in the gateway: whole JSON answers and SSE streams.

Streams are marked as they pass, event by event (watermark/stream.py): each choice has its own engine, an event
waits until its text is released, and goes out as it came unless a site in it was rewritten.
"""

from __future__ import annotations

from typing import Any

import orjson

from distillguard.watermark.stream import StreamMarker, choice_index
from distillguard.watermark.text import LEVELS, SCHEME, Engine, Strength, TextKey


class ResponseWatermarker:
    def __init__(self, key: TextKey, strength: Strength, chat: bool, spacing: bool = True) -> None:
        self.key = key
        self.strength = strength
        self.spacing = spacing
        self._chat = chat
        self._field = "content" if chat else "text"
        self._engines: dict[int, Engine] = {}

    def _new_engine(self) -> Engine:
        return Engine(self.key, LEVELS[self.strength], self.spacing)

    def _engine(self, index: int) -> Engine:
        engine = self._engines.get(index)
        if engine is None:
            engine = self._engines[index] = self._new_engine()
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
            engine = self._engine(choice_index(choice, position))
            marked = engine.feed(holder[field]) + engine.flush()
            if marked != holder[field]:
                holder[field] = marked
                changed = True
        return orjson.dumps(payload) if changed else body

    def stream(self) -> StreamMarker:
        """The marker of one streamed answer (watermark/stream.py)."""
        return StreamMarker(self._engines, self._new_engine, self._chat)
