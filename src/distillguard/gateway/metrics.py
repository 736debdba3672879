"""Prometheus metrics of one gateway, on a registry of its own (``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# A shared limits storage answers in well under a millisecond on a LAN; its timeout is tens of milliseconds.
_STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ScoreWriterStats(Protocol):
    """What the score writer (gateway/scores.py) counts."""

    written: int
    failures: int

    @property
    def pending(self) -> int: ...


class ClusteringStats(Protocol):
    """What the periodic clustering job (clusters/job.py) counts."""

    runs: int
    failures: int
    campaigns: int
    cases_opened: int
    last_duration_s: float

    @property
    def runner(self) -> bool: ...


class SharedStateStats(Protocol):
    """What the scorer over state shared in Redis (detect/shared_scorer.py) counts."""

    rounds: int
    failures: int
    conflicts: int
    adopted: int
    dropped: int
    redis_up: bool


# (family, name, help, how to read the value)
Reading = tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str, Callable[[], float]]


class _Readings(Collector):
    """Counters and gauges read from a component's own numbers when scraped (no Prometheus objects below here)."""

    def __init__(self, readings: list[Reading]) -> None:
        self._readings = readings

    def collect(self) -> Iterator[Metric]:
        for family, name, documentation, read in self._readings:
            yield family(name, documentation, value=read())


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "distillguard_requests_total",
            "API calls answered, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "distillguard_request_duration_seconds",
            "Time from request to last byte of the answer",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "distillguard_time_to_first_token_seconds",
            "Time to the first streamed chunk",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "distillguard_rate_limited_total",
            "Calls refused with 429, by scope and kind of limit",
            ["scope", "kind"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "distillguard_upstream_errors_total",
            "Upstream failures, by upstream and kind",
            ["upstream", "kind"],
            registry=self.registry,
        )
        self.event_queue_depth = Gauge(
            "distillguard_event_queue_depth", "Events queued, not yet written", registry=self.registry
        )
        self.events_written = Gauge("distillguard_events_written", "Events written since start", registry=self.registry)
        self.requests_in_flight = Gauge(
            "distillguard_requests_in_flight", "Requests being handled, the scrape aside", registry=self.registry
        )
        self.responses = Counter(
            "distillguard_response_decisions_total",
            "Calls of accounts with a standing above allow, by level and whether it was applied",
            ["level", "applied"],
            registry=self.registry,
        )
        self.response_available = Gauge(
            "distillguard_response_available",
            "1 when the response's dependency is available, 0 when the fail mode applies",
            ["component"],
            registry=self.registry,
        )
        self.fail_mode_calls = Counter(
            "distillguard_fail_mode_calls_total",
            "Calls served (open) or refused (closed) while the response was unavailable",
            ["mode"],
            registry=self.registry,
        )
        self.limits_storage_latency = Histogram(
            "distillguard_limits_storage_seconds",
            "Round trips to the shared rate-limit storage (Redis), by operation, failed ones included",
            ["operation"],
            buckets=_STORAGE_BUCKETS,
            registry=self.registry,
        )
        self.limits_storage_available = Gauge(
            "distillguard_limits_storage_available",
            "1 when the rate-limit storage answers, 0 while its fail mode applies",
            registry=self.registry,
        )
        self.limits_fail_mode_calls = Counter(
            "distillguard_limits_fail_mode_calls_total",
            "Calls admitted unchecked (open) or refused with 503 (closed) while the rate-limit storage was unavailable",
            ["mode"],
            registry=self.registry,
        )
        self._storage_children: dict[str, Histogram] = {}
        self._status_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def bind_event_queue(self, depth: Callable[[], float], written: Callable[[], float]) -> None:
        self.event_queue_depth.set_function(depth)
        self.events_written.set_function(written)

    def bind_response(self, scorer: Callable[[], float], store: Callable[[], float]) -> None:
        self.response_available.labels("scorer").set_function(scorer)
        self.response_available.labels("store").set_function(store)

    def bind_scores(self, writer: ScoreWriterStats) -> None:
        self.registry.register(
            _Readings(
                [
                    (CounterMetricFamily, "distillguard_scores_written", "Account scores written to the store",
                     lambda: writer.written),
                    (CounterMetricFamily, "distillguard_scores_write_failures", "Failed writes of scores (retried)",
                     lambda: writer.failures),
                    (GaugeMetricFamily, "distillguard_scores_pending", "Accounts whose newest score awaits writing",
                     lambda: writer.pending),
                ]
            )
        )  # fmt: skip

    def bind_clustering(self, job: ClusteringStats) -> None:
        self.registry.register(
            _Readings(
                [
                    (CounterMetricFamily, "distillguard_clustering_runs", "Campaign clustering runs finished",
                     lambda: job.runs),
                    (CounterMetricFamily, "distillguard_clustering_failures", "Campaign clustering runs that failed",
                     lambda: job.failures),
                    (GaugeMetricFamily, "distillguard_clustering_last_duration_seconds",
                     "Duration of the last clustering run", lambda: job.last_duration_s),
                    (GaugeMetricFamily, "distillguard_clustering_campaigns", "Campaigns the last clustering run found",
                     lambda: job.campaigns),
                    (CounterMetricFamily, "distillguard_clustering_cases_opened",
                     "Campaign cases opened by the clustering job", lambda: job.cases_opened),
                    (GaugeMetricFamily, "distillguard_clustering_runner",
                     "1 when this process runs the clustering job (holds its lock)", lambda: float(job.runner)),
                ]
            )
        )  # fmt: skip

    def bind_online_state(self, stats: SharedStateStats, pending: Callable[[], float]) -> None:
        self.registry.register(
            _Readings(
                [
                    (CounterMetricFamily, "distillguard_online_state_rounds", "Rescoring rounds over the shared state",
                     lambda: stats.rounds),
                    (CounterMetricFamily, "distillguard_online_state_failures",
                     "Rounds that failed on Redis (their calls stay buffered)", lambda: stats.failures),
                    (CounterMetricFamily, "distillguard_online_state_conflicts",
                     "Account writes another replica overtook (folded again next round)", lambda: stats.conflicts),
                    (CounterMetricFamily, "distillguard_online_state_adopted",
                     "Scores adopted from another replica (the shared verdict cache)", lambda: stats.adopted),
                    (CounterMetricFamily, "distillguard_online_state_dropped_calls",
                     "Calls left out of scoring because the buffer was full while Redis was unreachable",
                     lambda: stats.dropped),
                    (GaugeMetricFamily, "distillguard_online_state_pending_calls",
                     "Calls served and not yet folded into the shared state", pending),
                    (GaugeMetricFamily, "distillguard_online_state_available",
                     "1 when the last round reached Redis", lambda: float(stats.redis_up)),
                ]
            )
        )  # fmt: skip

    def bind_limits(self, available: Callable[[], float]) -> None:
        self.limits_storage_available.set_function(available)

    def observe_limits_storage(self, operation: str, seconds: float) -> None:
        hist = self._storage_children.get(operation)
        if hist is None:
            hist = self._storage_children[operation] = self.limits_storage_latency.labels(operation)
        hist.observe(seconds)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        # Cached children: labels() costs a dict build and a lock per call otherwise.
        child = self._status_children.get((endpoint, status))
        if child is None:
            child = self._status_children[(endpoint, status)] = self.requests.labels(endpoint, str(status))
        child.inc()
        hist = self._latency_children.get(endpoint)
        if hist is None:
            hist = self._latency_children[endpoint] = self.latency.labels(endpoint)
        hist.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
