"""Ingest: the event stream's consumer. Workers read the Redis Stream in a consumer group, enrich the events
(signals), archive them as hourly Parquet partitions, and can feed the online scorer (verdicts for the gateways)."""

from distillguard.ingest.archive import Archive, read_archive
from distillguard.ingest.worker import IngestOptions, IngestStats, IngestWorker

__all__ = ["Archive", "IngestOptions", "IngestStats", "IngestWorker", "read_archive"]
