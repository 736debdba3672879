"""Prometheus metrics of one ingest worker (``--metrics-port``), on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "distillguard_ingest_events_total",
            "Stream entries handled, by outcome: archived, duplicate (already archived), trimmed (gone from the "
            "stream before it was read: lost), rejected (not an event; kept in _rejected/)",
            ["outcome"],
            registry=self.registry,
        )
        self.signals_computed = Counter(
            "distillguard_ingest_signals_computed_total",
            "Events that arrived without current signals and had them computed at ingest",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "distillguard_ingest_batch_seconds",
            "Time to decode, enrich, archive and acknowledge one batch",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.lag = Gauge(
            "distillguard_ingest_stream_lag",
            "Stream entries not yet delivered to this worker's consumer group (the backlog)",
            registry=self.registry,
        )
        self.pending = Gauge(
            "distillguard_ingest_stream_pending",
            "Entries delivered to the group and not yet acknowledged",
            registry=self.registry,
        )
        self.stream_length = Gauge("distillguard_ingest_stream_length", "Entries in the stream", registry=self.registry)
        self.redis_errors = Counter(
            "distillguard_ingest_redis_errors_total", "Redis failures the worker recovered from", registry=self.registry
        )
        self.rollup_files = Counter(
            "distillguard_ingest_rollup_files_total",
            "Archive files counted into the store's traffic rollups (--store-url): counted, or already counted (a "
            "redelivered or twice-committed file, not counted again)",
            ["outcome"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "distillguard_ingest_store_errors_total",
            "State-store failures while counting the rollups that the worker recovered from",
            registry=self.registry,
        )
