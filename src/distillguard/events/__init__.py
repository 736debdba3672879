"""The event schema, its JSONL form, and sinks that store events off the request path."""

from distillguard.events.schema import SCHEMA_VERSION, Event
from distillguard.events.sink import EventSink, open_sink

__all__ = ["SCHEMA_VERSION", "Event", "EventSink", "open_sink"]
