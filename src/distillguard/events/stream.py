"""The shared event sink: events appended to a Redis Stream, which ``distillguard ingest`` archives.

The request path only appends to a bounded deque (no I/O, no lock); one writer thread sends the queue to Redis
every ``flush_interval_ms`` (or as soon as ``batch_size`` events wait), ``batch_size`` events per round trip.

A batch is appended by a small Lua script rather than a plain pipeline: the script first sets a marker key for the
batch (``SET NX``) and appends nothing when the marker exists. A batch whose reply was lost (Redis executed it,
then the connection dropped) is retried with the same marker, so it lands once: the sink never duplicates an event
in the stream, and the stream holds every event at most once.

Durability (docs/events.md):

- Redis down: the queue keeps up to ``queue_max`` events plus the batch being retried (bounded memory); beyond
  that the *oldest* queued events are dropped and counted in ``distillguard_events_dropped_total``. The oldest go
  first because they are the stalest for online detection and because Redis' own MAXLEN trimming also drops the
  oldest: under pressure one rule holds end to end. The sink never refuses calls (``saturated`` is always False):
  a Redis outage degrades the record, not the API. When Redis is back the backlog is sent.
- Graceful stop: the queue is sent before the process exits, for at most ``stream_close_timeout_s``.
- ``kill -9``: at most the events of the last flush interval plus the batch in flight are lost (everything while
  Redis is down).
- ``stream_maxlen`` trims the stream approximately (``MAXLEN ~``): entries trimmed before an ingest worker read
  them are lost. ``distillguard_event_stream_group_lag`` shows how far each consumer group is behind.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson
import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from redis.backoff import NoBackoff
from redis.retry import Retry

from distillguard.config import EventsConfig
from distillguard.events.schema import Event

log = logging.getLogger(__name__)

# The fields of a stream entry: the event id on its own (so a reader can dedupe without parsing) and the event's
# documented JSON (docs/events.md).
EVENT_ID_FIELD = b"event_id"
EVENT_FIELD = b"event"

# A batch marker outlives any retry of its batch: a retry comes within seconds, or when Redis is back.
BATCH_MARKER_TTL_S = 86_400
# Timeouts of one Redis call: a hung Redis must not hold the writer (or a graceful stop) for long.
SOCKET_TIMEOUT_S = 2.0
# While Redis is unreachable the writer tries again this often (the queue fills meanwhile, bounded).
RETRY_S = 0.5
# How often the stream's length and the consumer groups' lag are read for the metrics (two cheap commands).
STATS_EVERY_S = 5.0

# KEYS[1]: the stream, KEYS[2]: the batch marker. ARGV[1]: marker TTL, ARGV[2]: MAXLEN ("0": none), then
# (event_id, event JSON) pairs. Returns how many entries it appended (0 when the batch had landed before).
_APPEND_BATCH = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local n = 0
for i = 3, #ARGV, 2 do
  if ARGV[2] == '0' then
    redis.call('XADD', KEYS[1], '*', 'event_id', ARGV[i], 'event', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event_id', ARGV[i], 'event', ARGV[i + 1])
  end
  n = n + 1
end
return n
"""


def encode(event: Event) -> tuple[bytes, bytes]:
    """The (event id, event JSON) of a stream entry."""
    return event.event_id.encode(), orjson.dumps(event.to_json())


def connect(url: str, timeout_s: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A client that fails fast: the callers (sink writer, ingest worker, shared online state) retry on their own
    terms."""
    client: redis.Redis = redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return client


class _Batch:
    """A batch taken off the queue, encoded once, with the marker that makes its retries land once."""

    __slots__ = ("args", "marker", "size")

    def __init__(self, events: list[Event]) -> None:
        self.marker = secrets.token_hex(12)
        self.size = len(events)
        args: list[bytes] = []
        for event in events:
            args.extend(encode(event))
        self.args = args


class RedisStreamSink:
    """Event sink onto the Redis Stream ``config.stream_name`` at ``config.stream_url``."""

    def __init__(self, config: EventsConfig, client: redis.Redis | None = None) -> None:
        if client is None:
            if not config.stream_url:
                raise ValueError("the redis event sink needs events.stream_url")
            client = connect(config.stream_url)
        self._config = config
        self._client = client
        self.stream = config.stream_name
        self._append = client.register_script(_APPEND_BATCH)
        self._maxlen = str(config.stream_maxlen or 0).encode()
        self._pending: deque[Event] = deque()
        self._inflight: _Batch | None = None
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._stats_at = 0.0
        # Counters written by one thread each (the GIL makes a single writer's += safe, not two writers').
        self.written = 0
        self.write_errors = 0
        self._dropped_full = 0  # by submit (the event loop)
        self._dropped_at_close = 0  # by close
        self.redis_up = True
        self.stream_length: int | None = None
        self.groups: dict[str, tuple[int | None, int]] = {}  # group -> (lag, pending)

    # sink -------------------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        pending = self._pending
        pending.append(event)
        if len(pending) > self._config.queue_max:
            try:
                pending.popleft()
            except IndexError:  # the writer took the queue meanwhile
                pass
            else:
                self._dropped_full += 1
        if len(pending) >= self._config.batch_size:
            self._wake.set()

    @property
    def depth(self) -> int:
        inflight = self._inflight
        return len(self._pending) + (inflight.size if inflight is not None else 0)

    @property
    def saturated(self) -> bool:
        """Never: a full queue drops its oldest events (counted) rather than refuse calls."""
        return False

    @property
    def dropped(self) -> int:
        return self._dropped_full + self._dropped_at_close

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="distillguard-event-stream", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Send what is queued (for at most ``stream_close_timeout_s``), then release the connection."""
        timeout = self._config.stream_close_timeout_s
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            # The writer drains until the deadline; a call in progress may add one socket timeout.
            self._thread.join(timeout + SOCKET_TIMEOUT_S + 1)
            alive = self._thread.is_alive()
            self._thread = None
        else:
            alive = False
            self._drain(time.monotonic() + timeout)
        lost = self.depth
        if lost:
            self._dropped_at_close += lost
            log.error(
                "event stream unreachable at shutdown: %d queued events not sent",
                lost,
                extra={"stream": self.stream, "writer_alive": alive},
            )
        if not alive:
            self._client.close()

    def flush(self) -> bool:
        """Send what is queued now (tools and tests; the server relies on the writer thread). False if Redis failed."""
        return self._send_all()

    # writer -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        interval = self._config.flush_interval_ms / 1000
        while not self._stopping:
            self._wake.wait(interval if self.redis_up else RETRY_S)
            self._wake.clear()
            self._send_all()
            self._poll_stats()
        self._drain(time.monotonic() + self._config.stream_close_timeout_s)

    def _drain(self, deadline: float) -> None:
        while not self._send_all() and time.monotonic() < deadline:
            time.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))

    def _send_all(self) -> bool:
        """Send batches until the queue is empty; False (the rest kept, in order) when Redis fails."""
        # One sender at a time: a caller's flush() waits for the batch the writer thread has in flight.
        with self._send_lock:
            return self._send_all_locked()

    def _send_all_locked(self) -> bool:
        pending = self._pending
        batch_size = self._config.batch_size
        while True:
            batch = self._inflight
            if batch is None:
                events: list[Event] = []
                while pending and len(events) < batch_size:
                    try:
                        events.append(pending.popleft())
                    except IndexError:
                        break
                if not events:
                    return True
                batch = self._inflight = _Batch(events)
            try:
                self._append(
                    keys=[self.stream, f"{self.stream}:batch:{batch.marker}"],
                    args=[BATCH_MARKER_TTL_S, self._maxlen, *batch.args],
                )
            except redis.RedisError as exc:
                self.write_errors += 1
                if self.redis_up:
                    self.redis_up = False
                    log.warning("event stream unreachable; queueing events (%s)", exc, extra={"stream": self.stream})
                return False
            self._inflight = None
            self.written += batch.size
            if not self.redis_up:
                self.redis_up = True
                log.info("event stream reachable again", extra={"stream": self.stream, "queued": self.depth})

    def _poll_stats(self) -> None:
        now = time.monotonic()
        if not self.redis_up or now - self._stats_at < STATS_EVERY_S:
            return
        self._stats_at = now
        try:
            self.stream_length, self.groups = read_stream_stats(self._client, self.stream)
        except redis.RedisError:
            log.debug("could not read the event stream's statistics", exc_info=True)

    # metrics ----------------------------------------------------------------------------------------
    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Export drops, write errors, Redis reachability, stream length and consumer-group lag on ``registry``."""
        registry.register(_SinkCollector(self))


def read_stream_stats(client: redis.Redis, stream: str) -> tuple[int, dict[str, tuple[int | None, int]]]:
    """The stream's length and, per consumer group, (lag, pending); lag is None when Redis cannot tell."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xinfo_groups(stream)
    try:
        length, groups = pipe.execute()
    except redis.ResponseError:  # no such key: nothing was appended yet
        return 0, {}
    out: dict[str, tuple[int | None, int]] = {}
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else str(group["name"])
        lag = group.get("lag")
        out[name] = (int(lag) if lag is not None else None, int(group.get("pending") or 0))
    return int(length), out


class _SinkCollector(Collector):
    def __init__(self, sink: RedisStreamSink) -> None:
        self._sink = sink

    def collect(self) -> Iterator[Any]:
        sink = self._sink
        yield CounterMetricFamily(
            "distillguard_events_dropped", "Events dropped: the local queue was full or Redis unreachable at stop",
            value=sink.dropped,
        )  # fmt: skip
        yield CounterMetricFamily(
            "distillguard_event_stream_write_errors", "Failed appends to the event stream (batches retried)",
            value=sink.write_errors,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "distillguard_event_stream_up", "1 when the last append to the event stream succeeded", value=sink.redis_up
        )
        if sink.stream_length is not None:
            yield GaugeMetricFamily(
                "distillguard_event_stream_length", "Entries in the event stream", value=sink.stream_length
            )
        lag = GaugeMetricFamily(
            "distillguard_event_stream_group_lag",
            "Stream entries not yet delivered to the consumer group",
            labels=["group"],
        )
        pending = GaugeMetricFamily(
            "distillguard_event_stream_group_pending", "Entries delivered to the group, not yet acknowledged",
            labels=["group"],
        )  # fmt: skip
        for group, (group_lag, group_pending) in sorted(sink.groups.items()):
            if group_lag is not None:
                lag.add_metric([group], group_lag)
            pending.add_metric([group], group_pending)
        yield lag
        yield pending
