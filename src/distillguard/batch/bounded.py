"""Bounded collections as DataFrame jobs: which items a capped counter or set of the streaming code keeps.

The streaming state (``detect.features.AccountState``, ``clusters.profile.AccountProfile``) admits a new item
while it holds fewer than N, and counts an admitted item on every later occurrence. So it keeps exactly the first
N distinct items in the order events arrive, each with all its occurrences: a group-by on (key, item) that
remembers each item's first occurrence, cut after the N-th. The first occurrences also give an unbounded
counter's insertion order, which decides ``Counter.most_common``'s ties and the order floating sums run in.

Every kind of item of a job is computed in one pass (:func:`bounded_items`): each event is exploded into its
items of every kind and aggregated once, rather than shuffled once per kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


@dataclass(frozen=True)
class Kind:
    """One bounded collection: its ``item`` per event (null: none), the cap (None: unbounded), an optional
    ``group`` (one collection per key and group, e.g. contents per template) and the ``order`` of its items
    (default: the event's place)."""

    name: str
    item: Column
    cap: int | None
    group: Column | None = None
    order: Column | None = None


def bounded_items(frame: DataFrame, key: str, kinds: Sequence[Kind], order: str = "seq") -> DataFrame:
    """The kept items of every kind, per key: columns ``key``, ``kind``, ``group`` ('' when ungrouped), ``item``
    (as text), ``n`` (its occurrences), ``first`` (its order at the first one: sort by it for the collection's
    order) and ``first_ts`` (the time there). ``frame`` needs ``key``, ``order`` and ``ts``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entries = F.array(
        *(
            F.struct(
                F.lit(k.name).alias("kind"),
                (k.group if k.group is not None else F.lit("")).alias("group"),
                k.item.cast("string").alias("item"),
                (k.order if k.order is not None else F.col(order)).alias("o"),
            )
            for k in kinds
        )
    )
    cap = F.lit(None).cast("bigint")
    for name, limit in {k.name: k.cap for k in kinds}.items():
        if limit is not None:
            cap = F.when(F.col("kind") == name, F.lit(limit)).otherwise(cap)
    collection = [key, "kind", "group"]
    return (
        frame.select(key, "ts", F.explode(entries).alias("e"))
        .select(key, "ts", "e.kind", "e.group", "e.item", "e.o")
        .filter(F.col("item").isNotNull())
        .groupBy(*collection, "item")
        .agg(F.count(F.lit(1)).alias("n"), F.min("o").alias("first"), F.min("ts").alias("first_ts"))
        .withColumn("_rank", F.row_number().over(Window.partitionBy(*collection).orderBy("first")))
        .filter(cap.isNull() | (F.col("_rank") <= cap))
        .drop("_rank")
    )


def of_kind(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col("kind") == name
