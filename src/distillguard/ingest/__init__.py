"""Ingest: the event stream's consumer. Workers read the Redis Stream in a consumer group, enrich the events
(signals), archive them as hourly Parquet partitions, and can feed the online scorer (verdicts for the gateways).

The parts live in ``archive``, ``worker`` and ``verdicts``; nothing is imported here, so that loading the CLI (which
names the ``ingest`` command) does not load pyarrow and redis."""
