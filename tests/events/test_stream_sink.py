"""The Redis Stream sink: batches reach the stream once, the queue stays bounded when Redis is down, drops are
counted, the backlog is sent when Redis returns, and a stop sends what is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest

from distillguard.config import ConfigError, EventsConfig, load_settings
from distillguard.events import open_sink
from distillguard.events.stream import EVENT_FIELD, EVENT_ID_FIELD, RedisStreamSink, _Batch
from tests.ingest.events import make_event
from tests.support.servers import Redis

STREAM = "distillguard:events"


def config(server: Redis, **changes: Any) -> EventsConfig:
    return EventsConfig(sink="redis", stream_url=server.url, **changes)


def entries(server: Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The stream's entries as redis-py returns them without decoding: (id, {field: value}) in bytes."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], redis.Redis.from_url(server.url).xrange(STREAM))


def stream_ids(server: Redis) -> list[str]:
    return [fields[EVENT_ID_FIELD].decode() for _, fields in entries(server)]


def test_each_event_lands_once_as_its_documented_json(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server, batch_size=4))
    events = [make_event(i, signals=i % 2 == 0) for i in range(10)]
    for event in events:
        sink.submit(event)
    assert sink.flush()
    stored = entries(redis_server)
    assert [f[EVENT_ID_FIELD].decode() for _, f in stored] == [e.event_id for e in events]
    assert [orjson.loads(f[EVENT_FIELD]) for _, f in stored] == [e.to_json() for e in events]
    assert sink.written == 10 and sink.depth == 0 and sink.dropped == 0
    sink.close()


def test_a_batch_retried_after_a_lost_reply_is_appended_once(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server))
    batch = _Batch([make_event(i) for i in range(3)])
    # The same batch sent twice: what happens when Redis ran it but the reply never came back.
    sink._inflight = batch
    assert sink.flush()
    sink._inflight = batch
    assert sink.flush()
    assert stream_ids(redis_server) == [make_event(i).event_id for i in range(3)]
    sink.close()


def test_redis_down_keeps_a_bounded_queue_dropping_the_oldest_then_sends_the_backlog(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server, queue_max=5, batch_size=2))
    redis_server.stop()
    for i in range(12):
        sink.submit(make_event(i))
    assert not sink.flush()
    # The seven oldest were dropped; the failed batch (two events) is kept for the retry with the other three.
    assert sink.depth == 5 and sink.dropped == 7
    assert sink.write_errors >= 1 and not sink.redis_up
    redis_server.start()
    assert sink.flush()
    sent = stream_ids(redis_server)
    assert sent == [make_event(i).event_id for i in range(7, 12)]  # the newest are kept, in order
    assert sink.depth == 0 and sink.redis_up
    sink.close()


def test_graceful_close_sends_everything_queued(redis_server: Redis) -> None:
    # A long interval: only the close can have sent these.
    sink = RedisStreamSink(config(redis_server, flush_interval_ms=60_000, batch_size=100_000))
    sink.start()
    for i in range(500):
        sink.submit(make_event(i))
    sink.close()
    assert stream_ids(redis_server) == [make_event(i).event_id for i in range(500)]
    assert sink.dropped == 0


def test_close_with_redis_down_is_bounded_and_counts_what_it_could_not_send(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server, stream_close_timeout_s=0.2))
    sink.start()
    redis_server.stop()
    for i in range(30):
        sink.submit(make_event(i))
    sink.close()
    assert sink.dropped == 30 and sink.depth == 30


def test_stream_is_trimmed_to_about_stream_maxlen(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server, stream_maxlen=100, batch_size=50))
    for i in range(2000):
        sink.submit(make_event(i))
    assert sink.flush()
    length = redis.Redis.from_url(redis_server.url).xlen(STREAM)
    assert 100 <= length < 1000  # approximate trimming removes whole nodes (about 100 entries each)
    sink.close()


def test_metrics_show_drops_stream_length_and_group_lag(redis_server: Redis) -> None:
    sink = RedisStreamSink(config(redis_server, queue_max=3))
    client = redis.Redis.from_url(redis_server.url)
    client.xgroup_create(STREAM, "ingest", id="0", mkstream=True)
    for i in range(5):
        sink.submit(make_event(i))
    assert sink.flush()
    sink._poll_stats()
    registry = CollectorRegistry()
    sink.register_metrics(registry)
    text = generate_latest(registry).decode()
    assert "distillguard_events_dropped_total 2.0" in text
    assert "distillguard_event_stream_length 3.0" in text
    assert 'distillguard_event_stream_group_lag{group="ingest"} 3.0' in text
    assert "distillguard_event_stream_up 1.0" in text
    sink.close()


def test_open_sink_picks_the_stream_by_configuration(redis_server: Redis, tmp_path: Path) -> None:
    sink = open_sink(tmp_path, config(redis_server))
    assert isinstance(sink, RedisStreamSink) and not sink.saturated
    sink.close()
    assert not (tmp_path / "events.db").exists()


def test_a_redis_sink_without_a_url_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[events]\nsink = "redis"\n')
    with pytest.raises(ConfigError, match="stream_url"):
        load_settings(path)
