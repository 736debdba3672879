"""Account features as DataFrame jobs: the totals ``detect.features.AccountState`` would hold after every event.

One row per key (an account, or a campaign when the events carry their campaign's id), turned into a
:class:`~distillguard.detect.features.FeatureTotals`, whose ``vector`` is the one the embedded engine scores.
Everything order-dependent is computed in the embedded replay's order (``seq``):

- bounded sets and counters keep their first N distinct items (``batch.bounded``);
- per-capability counts come in order of first use, so the entropy is summed in the same order;
- the gap statistics are Welford's running mean and M2 folded over the sorted timestamps in the JVM, operation by
  operation as ``AccountState.update`` does them in IEEE doubles, so they are bit-identical, not merely close;
- a pivot to a newly released model is judged against the model clock of the same events (:func:`model_clock`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distillguard.batch.bounded import Kind, bounded_items, of_kind
from distillguard.batch.events import HOUR_US, floor_div
from distillguard.detect.features import (
    ACTIVE_HOURS_CAP,
    BUSY_MINUTE_CALLS,
    CLOCK_MODEL_CAP,
    CONTENT_CAP,
    LANGUAGE_CAP,
    LONG_MAX_TOKENS,
    MODEL_CAP,
    NEW_MODEL_AFTER_US,
    PIVOT_WINDOW_US,
    SYSTEM_PROMPT_CAP,
    TEMPLATE_CAP,
    FeatureTotals,
    ModelClock,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

RATE_LIMITED = 429
MINUTE_US = 60_000_000
# Welford's update, as AccountState.update runs it: gap = (ts - last) / 1e6; n += 1; delta = gap - mean;
# mean += delta / n; m2 += delta * (gap - mean). The lambda has no local variables, so gap and the new mean are
# spelled out; each is the same sequence of double operations every time it appears.
_GAP = "(CAST(t - a.prev AS DOUBLE) / 1000000D)"
_MEAN = f"(a.mean + ({_GAP} - a.mean) / CAST(a.n + 1 AS DOUBLE))"
_WELFORD = (
    "aggregate(slice(tss, 2, size(tss)), named_struct('prev', element_at(tss, 1), 'n', 0L, 'mean', 0D, 'm2', 0D), "
    f"(a, t) -> named_struct('prev', t, 'n', a.n + 1, 'mean', {_MEAN}, "
    f"'m2', a.m2 + ({_GAP} - a.mean) * ({_GAP} - {_MEAN})))"
)


def model_clock(events: DataFrame) -> ModelClock:
    """The clock a replay of ``events`` ends with: when they began, and when each of the first models appeared."""
    from pyspark.sql import functions as F

    start = events.agg(F.min("ts").alias("start")).first()
    firsts = (
        events.filter(F.col("model").isNotNull())
        .groupBy("model")
        .agg(F.min("seq").alias("first"), F.min("ts").alias("ts"))
        .orderBy("first")
        .limit(CLOCK_MODEL_CAP)
        .collect()
    )
    return ModelClock(start["start"] if start is not None else None, {row["model"]: row["ts"] for row in firsts})


def feature_totals(events: DataFrame, key: str, clock: ModelClock) -> dict[str, FeatureTotals]:
    """The totals of every value of ``key`` in ``events`` (which carry ``seq``); sign-up time and verification are
    left unknown for the caller to set from the accounts' metadata."""
    from pyspark.sql import functions as F

    served = F.col("status") != RATE_LIMITED

    def count_if(condition: Column) -> Column:
        return F.sum(F.when(condition, 1).otherwise(0))

    def served_count(condition: Column) -> Column:
        return count_if(served & condition)

    def when_served(name: str) -> Column:
        return F.when(served, F.col(name))

    hour_of_day = F.pmod(floor_div("ts", HOUR_US), F.lit(24))
    base = events.groupBy(key).agg(
        F.count(F.lit(1)).alias("events"),
        count_if(~served).alias("rate_limited"),
        F.sum(F.when(served, F.coalesce("prompt_tokens", F.lit(0))).otherwise(0)).alias("prompt_tokens"),
        F.sum(F.when(served, F.coalesce("completion_tokens", F.lit(0))).otherwise(0)).alias("completion_tokens"),
        F.max("ts").alias("last_us"),
        F.array_sort(F.collect_list("ts")).alias("tss"),
        F.array(*(count_if(hour_of_day == h) for h in range(24))).alias("hours"),
        served_count(F.col("sig_user_turns") <= 1).alias("single_turn"),
        served_count(F.col("sig_cot").isNotNull()).alias("cot"),
        served_count(F.col("sig_training_data").isNotNull()).alias("training_data"),
        served_count(F.col("sig_rubric").isNotNull()).alias("rubric"),
        served_count(F.col("sig_logprob_harvest")).alias("logprob_harvest"),
        served_count(F.col("sig_benchmark").isNotNull()).alias("benchmark"),
        served_count(F.col("sig_tools")).alias("tools"),
        served_count(F.coalesce("sig_max_tokens", F.lit(0)) >= LONG_MAX_TOKENS).alias("long_max_tokens"),
        served_count(F.col("sig_temperature") == 0).alias("temperature_zero"),
        served_count(F.col("sig_system_prompt_hash").isNotNull()).alias("with_system"),
    )
    base = base.withColumn("gaps", F.expr(_WELFORD)).drop("tss")
    items = bounded_items(
        events,
        key,
        [
            Kind("template", when_served("sig_template_id"), TEMPLATE_CAP),
            Kind("content", when_served("sig_content_sig"), CONTENT_CAP),
            Kind("domain", when_served("sig_domain"), None),
            Kind("language", when_served("sig_language"), LANGUAGE_CAP),
            Kind("system_prompt", when_served("sig_system_prompt_hash"), SYSTEM_PROMPT_CAP),
            Kind("model", when_served("model"), MODEL_CAP),
            Kind("hour", floor_div("ts", HOUR_US), ACTIVE_HOURS_CAP),
            Kind("minute", floor_div("ts", MINUTE_US), None),
        ],
    ).persist()
    try:
        hours = F.when(of_kind("hour"), F.pmod(F.col("item").cast("bigint"), F.lit(24)))
        summary = items.groupBy(key, "kind").agg(
            F.count(F.lit(1)).alias("distinct"),
            F.max("n").alias("top"),
            F.sum(F.col("n") - 1).alias("repeats"),
            count_if(F.col("n") >= BUSY_MINUTE_CALLS).alias("busy"),
            F.count_distinct(hours).alias("hours_of_day"),
            F.transform(
                F.array_sort(F.collect_list(F.when(of_kind("domain"), F.struct("first", "n")))), lambda x: x["n"]
            ).alias("in_order"),
        )
        pivots = _pivots(events, items.filter(of_kind("model")), key, clock)
        kinds: dict[str, dict[str, dict[str, Any]]] = {}
        for row in summary.toArrow().to_pylist():
            kinds.setdefault(row[key], {})[row["kind"]] = row
        moved = {row[key]: row for row in pivots.toArrow().to_pylist()}
        return {
            row[key]: _totals(row, kinds.get(row[key], {}), moved.get(row[key])) for row in base.toArrow().to_pylist()
        }
    finally:
        items.unpersist()


def _pivots(events: DataFrame, models: DataFrame, key: str, clock: ModelClock) -> DataFrame:
    """Per key that moved to a newly released model: the event (1-based, all calls counted) at which it first
    used it, and its calls on that model (``AccountState``'s ``pivot_at_events`` and ``model_events[pivot]``).
    ``models``: the key's kept models (``bounded_items``)."""
    from pyspark.sql import functions as F

    spark = events.sparkSession
    releases = spark.createDataFrame(list(clock.first_seen.items()), "item string, released bigint")
    # A model the clock does not remember (past its cap) is "released" at each of its calls, as in ModelClock.
    released = F.coalesce(F.col("released"), F.col("first_ts"))
    start = clock.log_start_us if clock.log_start_us is not None else 0
    candidates = models.join(F.broadcast(releases), "item", "left").filter(
        (released - F.lit(start) >= NEW_MODEL_AFTER_US) & (F.col("first_ts") - released <= PIVOT_WINDOW_US)
    )
    pivots = candidates.groupBy(key).agg(
        F.min("first").alias("pivot_first"), F.min_by("n", "first").alias("pivot_events")
    )
    at = (
        events.select(key, "seq")
        .join(F.broadcast(pivots.select(key, "pivot_first")), key)
        .filter(F.col("seq") <= F.col("pivot_first"))
        .groupBy(key)
        .agg(F.count(F.lit(1)).alias("pivot_at_events"))
    )
    return pivots.join(at, key).select(key, "pivot_at_events", "pivot_events")


def _totals(row: dict[str, Any], kinds: dict[str, dict[str, Any]], pivot: dict[str, Any] | None) -> FeatureTotals:
    def of(kind: str, name: str = "distinct") -> int:
        found = kinds.get(kind)
        value = found.get(name) if found is not None else None
        return int(value) if value is not None else 0

    gaps = row["gaps"]
    return FeatureTotals(
        events=row["events"],
        rate_limited=row["rate_limited"],
        tokens=row["prompt_tokens"] + row["completion_tokens"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        last_us=row["last_us"],
        created_us=None,
        verified=False,
        gap_n=gaps["n"],
        gap_mean=gaps["mean"],
        gap_m2=gaps["m2"],
        hours=list(row["hours"]),
        active_hours=of("hour"),
        active_hours_of_day=of("hour", "hours_of_day"),
        top_template=of("template", "top"),
        templates=of("template"),
        contents=of("content"),
        repeats=of("content", "repeats"),
        domains=list(kinds["domain"]["in_order"]) if "domain" in kinds else [],
        languages=of("language"),
        system_prompts=of("system_prompt"),
        with_system=row["with_system"],
        single_turn=row["single_turn"],
        cot=row["cot"],
        training_data=row["training_data"],
        rubric=row["rubric"],
        logprob_harvest=row["logprob_harvest"],
        benchmark=row["benchmark"],
        tools=row["tools"],
        long_max_tokens=row["long_max_tokens"],
        temperature_zero=row["temperature_zero"],
        minutes=of("minute"),
        busy_minutes=of("minute", "busy"),
        pivot_at_events=pivot["pivot_at_events"] if pivot is not None else None,
        pivot_events=pivot["pivot_events"] if pivot is not None else 0,
    )
