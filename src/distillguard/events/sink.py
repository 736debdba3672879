"""Where events go: a sink takes events on the request path and stores them in batches, off it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from distillguard.config import EventsConfig
from distillguard.events.schema import Event


class EventSink(Protocol):
    def submit(self, event: Event) -> None:
        """Queue one event; never blocks and never raises on the request path."""

    @property
    def depth(self) -> int:
        """Events queued and not yet durable."""

    @property
    def saturated(self) -> bool:
        """True when the queue is full: the gateway refuses new calls rather than lose their events."""

    def start(self) -> None: ...

    def close(self) -> None:
        """Write everything queued, then release the store."""


def open_sink(data_dir: Path, config: EventsConfig) -> EventSink:
    """The sink ``config.sink`` names: the embedded SQLite log in ``data_dir``, or the Redis Stream."""
    if config.sink == "redis":
        from distillguard.events.stream import RedisStreamSink

        return RedisStreamSink(config)
    from distillguard.events.sqlite import SQLiteEventLog

    return SQLiteEventLog(data_dir, config)
