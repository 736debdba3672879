"""When each flagged account would first have been flagged online: its own events replayed on the executors.

The embedded engine learns this by replaying the whole log through one ``OnlineScorer`` that rescores queued
accounts every ``flush_every`` events. An account's state depends only on its own events and on the model clock,
and its scores only on its state at each flush, so the same answer comes from replaying just that account's
events through its own ``OnlineScorer`` (the clock set to the whole log's, :func:`~.features.model_clock`), with
a flush wherever the log has one: after the event at 1-based place ``i`` in ``index`` order when a multiple of
``flush_every`` lies between ``i`` and the account's next event, and after its last event.

Only accounts whose final verdict is flagged need it (the others report no first flag), and each replay stops at
its first flag. Accounts are spread over the executors by key and replayed in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from distillguard.batch.archive import SIGNAL_FIELDS
from distillguard.detect.features import ModelClock
from distillguard.detect.scorer import AccountInfo, OnlineScorer
from distillguard.detect.verdicts import FLAGGED, Verdict
from distillguard.events.signals import from_row

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from distillguard.detect.model import RiskModel

_COLUMNS = ("ts", "status", "prompt_tokens", "completion_tokens", "model", *SIGNAL_FIELDS)


def first_flags(
    events: DataFrame,
    key: str,
    index: str,
    keys: Iterable[str],
    settings: OnlineScorer,
    clock: ModelClock,
    infos: Mapping[str, AccountInfo],
    flush_every: int,
) -> dict[str, tuple[int, int]]:
    """For each of ``keys`` flagged online: (the last event's time at that flush, its events by then). Each replay
    scores with ``settings``' model, thresholds and rescoring cadence."""
    from pyspark.sql import functions as F

    wanted = sorted(keys)
    if not wanted:
        return {}
    spark = events.sparkSession
    chosen = spark.createDataFrame([(k,) for k in wanted], f"{key} string")
    rows = (
        events.join(F.broadcast(chosen), key)
        .select(key, index, *_COLUMNS)
        .repartition(max(1, min(len(wanted), spark.sparkContext.defaultParallelism * 4)), key)
        .sortWithinPartitions(key, index)
    )
    replayer = _Replayer(
        key,
        index,
        _Settings(settings.model, dict(settings.thresholds), settings.rescore_every, flush_every),
        clock,
        {k: infos[k] for k in wanted if k in infos},
    )
    return {k: (at, n) for k, at, n in rows.rdd.mapPartitions(replayer).collect()}


@dataclass(frozen=True)
class _Settings:
    model: RiskModel | None
    thresholds: dict[Verdict, float]
    rescore_every: int
    flush_every: int


class _Replayer:
    """Runs on the executors (pickled with the model): the partition's rows, sorted by key and index."""

    def __init__(
        self, key: str, index: str, settings: _Settings, clock: ModelClock, infos: Mapping[str, AccountInfo]
    ) -> None:
        self.key, self.index, self.settings, self.clock, self.infos = key, index, settings, clock, dict(infos)

    def __call__(self, rows: Iterable[Any]) -> Iterator[tuple[str, int, int]]:
        current: str | None = None
        group: list[Any] = []
        for row in rows:
            if row[self.key] != current:
                yield from self._replay(current, group)
                current, group = row[self.key], []
            group.append(row)
        yield from self._replay(current, group)

    def _replay(self, key: str | None, rows: list[Any]) -> Iterator[tuple[str, int, int]]:
        if key is None or not rows:
            return
        info, settings = self.infos.get(key), self.settings
        scorer = OnlineScorer(
            settings.model, settings.thresholds, settings.rescore_every, {key: info} if info is not None else None
        )
        scorer.clock = replace(self.clock, first_seen=dict(self.clock.first_seen))
        every = settings.flush_every
        for i, row in enumerate(rows):
            signals = from_row(tuple(row[name] for name in SIGNAL_FIELDS))
            scorer.observe(
                key, row["ts"], signals, row["status"], row["prompt_tokens"], row["completion_tokens"], row["model"]
            )
            place = row[self.index] + 1
            following = rows[i + 1][self.index] + 1 if i + 1 < len(rows) else None
            if following is None or (following - 1) // every != (place - 1) // every:
                for score in scorer.flush():
                    if score.verdict in FLAGGED:
                        yield key, score.at_us, score.events
                        return
