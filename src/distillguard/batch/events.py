"""The archive as a Spark DataFrame: the columns analysis reads, normalised as the embedded reader normalises them.

One row per event with ``account_id``, ``ts`` (epoch microseconds), ``seq`` (the event's place in
:data:`~distillguard.batch.archive.ORDER`, 0, 1, …), ``status`` (a missing or zero status reads as 200),
``prompt_tokens``, ``completion_tokens``, ``model`` (the request's model when the event has none), the client's
``client_ip``, ``user_agent``, ``client_fingerprint`` and ``client_tls`` (empty text reads as missing), and the
``sig_*`` columns. Rows whose stored signals are of another version get them from ``detect.signals.extract`` in a
Python UDF, exactly as ``distillguard ingest`` (and the embedded reader) would compute them.
"""

from __future__ import annotations

from itertools import accumulate
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from distillguard.batch.archive import DEFAULT_STATUS, SIGNAL_FIELDS
from distillguard.events.signals import SIGNALS_VERSION, as_row
from distillguard.ingest.archive import SCHEMA
from distillguard.ingest.enrich import compute_signals

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

HOUR_US = 3_600_000_000
CLIENT_COLUMNS = ("client_ip", "user_agent", "client_fingerprint", "client_tls")
# The ``sig_*`` columns' Spark types, from the archive's Parquet schema.
_SPARK_TYPES = {pa.string(): "string", pa.bool_(): "boolean", pa.int64(): "bigint", pa.float64(): "double"}
SIGNAL_TYPES = tuple(_SPARK_TYPES[SCHEMA.field(name).type] for name in SIGNAL_FIELDS)
_REQUEST_MODEL = (
    "CASE WHEN schema_of_variant(variant_get(try_parse_json(request), '$.model')) = 'STRING' "
    "THEN variant_get(try_parse_json(request), '$.model', 'string') END"
)


def floor_div(name: str, divisor: int) -> Column:
    """``name // divisor`` as Python computes it (towards minus infinity), in exact integer arithmetic."""
    from pyspark.sql import functions as F

    return F.expr(f"({name} - pmod({name}, {divisor}L)) div {divisor}L")


def read_events(spark: SparkSession, archive: str, recompute_signals: bool = False) -> DataFrame:
    """The events of the archive at ``archive`` (a directory or a URL Spark can read: hdfs://, s3a:// …)."""
    from pyspark.sql import functions as F

    raw = spark.read.option("pathGlobFilter", "part-*.parquet").parquet(archive)
    parts = F.split(F.col("stream_id"), "-", 2)
    columns = [
        F.col("account_id"),
        F.unix_micros(F.col("ts")).alias("ts"),
        parts.getItem(0).cast("bigint").alias("stream_ms"),
        parts.getItem(1).cast("bigint").alias("stream_seq"),
        F.col("event_id"),
        F.coalesce(F.nullif(F.col("status"), F.lit(0)), F.lit(DEFAULT_STATUS)).alias("status"),
        F.col("prompt_tokens"),
        F.col("completion_tokens"),
        *(F.nullif(F.col(name), F.lit("")).alias(name) for name in CLIENT_COLUMNS),
    ]
    fresh = F.lit(False) if recompute_signals else F.coalesce(F.col("signals_version") == SIGNALS_VERSION, F.lit(False))
    has_model = F.col("model").isNotNull()
    signals = [F.col(name) for name in SIGNAL_FIELDS]
    # Request bodies are the bulk of an archive: only the events that need theirs read them (a model named only in
    # the request, signals to compute), and Parquet statistics let Spark skip the row groups of the others.
    ready = raw.filter(fresh & has_model).select(*columns, F.col("model"), *signals)
    named = raw.filter(fresh & ~has_model).select(*columns, F.expr(_REQUEST_MODEL).alias("model"), *signals)
    computed = (
        raw.filter(~fresh)
        .select(
            *columns,
            F.coalesce(F.col("model"), F.expr(_REQUEST_MODEL)).alias("model"),
            _signals_udf()(F.col("request"), F.col("endpoint")).alias("_signals"),
        )
        .select(
            *(c for c in ready.columns if c not in SIGNAL_FIELDS),
            *(F.col(f"_signals.{n}").alias(n) for n in SIGNAL_FIELDS),
        )
    )
    events = ready.unionByName(named).unionByName(computed)
    return with_order_index(events, ("ts", "stream_ms", "stream_seq", "event_id"), "seq").drop(
        "stream_ms", "stream_seq", "event_id"
    )


def _signals_udf() -> Any:
    """A UDF: (request JSON, endpoint) -> the ``sig_*`` struct, computed as ingest computes it."""
    from pyspark.sql import functions as F

    fields = ",".join(f"{name}:{kind}" for name, kind in zip(SIGNAL_FIELDS, SIGNAL_TYPES, strict=True))

    def signals(request: str, endpoint: str | None) -> tuple[Any, ...]:
        return as_row(compute_signals({"request": orjson.loads(request), "endpoint": endpoint}))

    return F.udf(signals, f"struct<{fields}>", useArrow=False)


def with_order_index(frame: DataFrame, order: tuple[str, ...], name: str) -> DataFrame:
    """``frame`` with ``name``: each row's place (0, 1, …) when sorted by ``order`` (whose first column is ``ts``).

    Rows are numbered within each hour of ``ts`` (in parallel) and each hour is offset by the rows of the hours
    before it (a few hundred numbers collected to the driver), so no step needs all rows in one partition.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    bucketed = frame.withColumn("_hour", floor_div("ts", HOUR_US))
    counts = sorted((row["_hour"], row["count"]) for row in bucketed.groupBy("_hour").count().collect())
    offsets = [0, *accumulate(n for _, n in counts)]
    offsets_frame = spark.createDataFrame(
        [(hour, offset) for (hour, _), offset in zip(counts, offsets, strict=False)], "_hour bigint, _offset bigint"
    )
    window = Window.partitionBy("_hour").orderBy(*order)
    return (
        bucketed.join(F.broadcast(offsets_frame), "_hour")
        .withColumn(name, F.row_number().over(window) - 1 + F.col("_offset"))
        .drop("_hour", "_offset")
    )
