"""Account profiles for campaign linking as DataFrame jobs: ``clusters.profile.AccountProfile``, built in Spark.

A profile is a bounded summary of an account's calls (first addresses, templates, system prompts, activity
buckets …). Each capped collection keeps the first N distinct items in the replay order (``batch.bounded``), in
that order, so ``most_common`` breaks ties as the embedded engine's profiles do and blocking, linking and the
campaigns' descriptions come out the same. Client addresses are turned into linking keys by
``clusters.network.address_keys`` itself, in a Python UDF over each account's distinct raw addresses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from distillguard.batch.bounded import Kind, bounded_items, of_kind
from distillguard.batch.events import floor_div
from distillguard.clusters.network import address_keys
from distillguard.clusters.profile import (
    AGENT_CAP,
    BUCKET_CAP,
    BUCKET_US,
    CONTENT_PER_TEMPLATE_CAP,
    IP_CAP,
    MODEL_CAP,
    PREFIX_CAP,
    RECIPE_CAP,
    SYSTEM_CAP,
    TEMPLATE_CAP,
    AccountProfile,
    RecipeParts,
    recipe_key,
)
from distillguard.events.signals import to_unsigned64
from distillguard.store.models import Account

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEY = "account_id"
# The recipe's parts (clusters.profile.recipe); the temperature is grouped by its text so that -0.0 and 0.0 stay
# apart as they do in Python (Spark would normalise them as grouping keys), and read back from it.
_RECIPE_PARTS = ("sig_cot", "sig_training_data", "sig_rubric", "sig_logprob_harvest", "sig_max_tokens")
_RECIPE_TAIL = ("sig_top_logprobs", "sig_n")


COUNTERS = ("ips", "prefixes", "networks", "user_agents", "fingerprints", "templates", "system_prompts", "domains")


def account_profiles(events: DataFrame, accounts: Mapping[str, Account]) -> dict[str, AccountProfile]:
    """The profile of every account of ``events`` (which carry ``seq``), with its sign-up metadata if known."""
    from pyspark.sql import functions as F

    base = events.groupBy(KEY).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum(F.coalesce("prompt_tokens", F.lit(0)) + F.coalesce("completion_tokens", F.lit(0))).alias("tokens"),
        F.min("ts").alias("first_us"),
        F.max("ts").alias("last_us"),
        F.sum(F.when(F.col("client_ip").isNull(), 1).otherwise(0)).alias("no_address"),
    )
    seq = F.col("seq")
    items = bounded_items(
        events,
        KEY,
        [
            Kind("templates", F.col("sig_template_id"), TEMPLATE_CAP),
            Kind("contents", F.col("sig_content_sig"), CONTENT_PER_TEMPLATE_CAP, group=F.col("sig_template_id")),
            Kind("system_prompts", F.col("sig_system_prompt_hash"), SYSTEM_CAP),
            Kind("recipes", F.when(_has_recipe(), F.to_json(_recipe())), RECIPE_CAP),
            Kind("user_agents", F.col("user_agent"), AGENT_CAP),
            # A call's HTTP fingerprint, then its TLS one: one counter, in that order.
            Kind("fingerprints", F.col("client_fingerprint"), AGENT_CAP, order=seq * 2),
            Kind("fingerprints", F.concat(F.lit("tls:"), F.col("client_tls")), AGENT_CAP, order=seq * 2 + 1),
            Kind("domains", F.col("sig_domain"), None),
            Kind("model_first", F.col("model"), MODEL_CAP),
            Kind("buckets", floor_div("ts", BUCKET_US), BUCKET_CAP),
            Kind("raw_ips", F.col("client_ip"), None),
        ],
    ).persist()
    try:
        kept = items.filter(~of_kind("raw_ips")).select(KEY, "kind", "group", "first", "item", "n", "first_ts")
        addresses, bad = _addresses(items.filter(of_kind("raw_ips")))
        sets = of_kind("buckets") | of_kind("contents")  # sets: their items alone, in any order
        entries = (
            kept.unionByName(addresses)
            .groupBy(KEY, "kind", "group")
            .agg(
                F.array_sort(F.collect_list(F.when(~sets, F.struct("first", "item", "n", "first_ts")))).alias(
                    "entries"
                ),
                F.collect_list(F.when(sets, F.col("item"))).alias("items"),
            )
        )
        profiles = {row[KEY]: _profile(row) for row in base.join(bad, KEY, "left").toArrow().to_pylist()}
        contents: dict[str, dict[str, set[int]]] = {}
        for batch in entries.toArrow().to_batches():
            for row in batch.to_pylist():
                _fill(profiles[row[KEY]], row, contents)
    finally:
        items.unpersist()
    for account_id, profile in profiles.items():
        mine = contents.get(account_id, {})
        profile.contents = {template: mine.get(template, set()) for template in profile.templates}
        meta = accounts.get(account_id)
        if meta is not None:
            profile.apply(meta)
    return profiles


def _addresses(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Addresses, their /24 (/48) prefixes and wider networks (kept as ``bounded_items`` keeps items), from each
    account's distinct raw addresses; and per account the calls whose address is malformed."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = raw.select(F.col("item").alias("raw")).distinct()
    keys = keys.select("raw", _address_udf()(F.col("raw")).alias("keys"))
    located = raw.join(keys, raw["item"] == keys["raw"])
    bad = located.groupBy(KEY).agg(F.sum(F.when(F.col("keys").isNull(), F.col("n")).otherwise(0)).alias("bad_address"))
    derived = F.array(
        *(
            F.struct(F.lit(kind).alias("kind"), F.col(f"keys.{field}").alias("item"), F.lit(cap).alias("cap"))
            for kind, field, cap in (
                ("ips", "ip", IP_CAP),
                ("prefixes", "prefix", PREFIX_CAP),
                ("networks", "network", PREFIX_CAP),
            )
        )
    )
    window = Window.partitionBy(KEY, "kind").orderBy("first")
    addresses = (
        located.filter(F.col("keys").isNotNull())
        .select(KEY, "n", "first", "first_ts", F.explode(derived).alias("d"))
        .groupBy(KEY, F.col("d.kind").alias("kind"), F.col("d.item").alias("item"), F.col("d.cap").alias("cap"))
        .agg(F.sum("n").alias("n"), F.min("first").alias("first"), F.min("first_ts").alias("first_ts"))
        .withColumn("rank", F.row_number().over(window))
        .filter(F.col("rank") <= F.col("cap"))
        .select(KEY, "kind", F.lit("").alias("group"), "first", "item", "n", "first_ts")
    )
    return addresses, bad


def _address_udf() -> Any:
    from pyspark.sql import functions as F

    def keys(text: str) -> tuple[str, str, str] | None:
        found = address_keys(text)
        return None if found is None else (found.ip, found.prefix, found.network)

    return F.udf(keys, "struct<ip:string,prefix:string,network:string>", useArrow=False)


def _has_recipe() -> Column:
    """``recipe(s) is not None``: a CoT, training-data or rubric rule matched (non-empty id) or a logprob probe."""
    from pyspark.sql import functions as F

    named = [F.coalesce(F.col(c), F.lit("")) != "" for c in ("sig_cot", "sig_training_data", "sig_rubric")]
    return named[0] | named[1] | named[2] | F.col("sig_logprob_harvest")


def _recipe() -> Column:
    from pyspark.sql import functions as F

    return F.struct(
        *(F.col(c) for c in _RECIPE_PARTS),
        F.col("sig_temperature").cast("string").alias("sig_temperature"),
        *(F.col(c) for c in _RECIPE_TAIL),
    )


def _recipe_parts(text: str) -> RecipeParts:
    """The recipe's parts from its JSON (null parts are left out), the temperature read back from its text."""
    item = orjson.loads(text)
    temperature = item.get("sig_temperature")
    cot, training_data, rubric, harvest, max_tokens = (item.get(c) for c in _RECIPE_PARTS)
    top_logprobs, n = (item.get(c) for c in _RECIPE_TAIL)
    return (
        cot,
        training_data,
        rubric,
        harvest,
        max_tokens,
        float(temperature) if temperature is not None else None,
        top_logprobs,
        n,
    )


def _profile(row: dict[str, Any]) -> AccountProfile:
    return AccountProfile(
        row[KEY],
        events=row["events"],
        tokens=row["tokens"],
        first_us=row["first_us"],
        last_us=row["last_us"],
        no_address=row["no_address"],
        bad_address=row["bad_address"] or 0,
    )


def _fill(profile: AccountProfile, row: dict[str, Any], contents: dict[str, dict[str, set[int]]]) -> None:
    """One collection of ``profile`` from its kept items (``entries`` in order of first occurrence; ``items`` of a
    set)."""
    kind, entries = row["kind"], row["entries"]
    if kind in COUNTERS:
        setattr(profile, kind, Counter({e["item"]: e["n"] for e in entries}))
    elif kind == "recipes":
        profile.recipes = Counter({recipe_key(_recipe_parts(e["item"])): e["n"] for e in entries})
    elif kind == "model_first":
        profile.model_first = {e["item"]: e["first_ts"] for e in entries}
    elif kind == "buckets":
        profile.buckets = {int(item) for item in row["items"]}
    elif kind == "contents":
        sigs = {to_unsigned64(int(item)) for item in row["items"]}
        contents.setdefault(profile.account_id, {})[row["group"]] = sigs
