"""Online state fed by ingest: the OnlineScorer run over ingested events, its verdicts written where others read them.

Every account the scorer rescores gets its latest score written to a **Redis hash** (``distillguard:verdicts``:
field = account id, value = the score's JSON plus ``at``, ``events`` and ``source``), or appended to a **JSONL**
file (one score per line, the latest line of an account is its current score). The hash is the shared verdict
cache the gateways can read; the file suits one-off backfills.

Account state lives in the worker's memory, so a score covers the events this worker saw since it started.
Workers of one consumer group split the stream between them, each seeing part of every account; for scores over
all of an account's traffic run the scoring worker in a consumer group of its own (every group reads the whole
stream): ``distillguard ingest --group scoring --verdicts redis``; or keep the state in Redis
(``--shared-state``, detect/shared_scorer.py), and the workers of one group score each account on all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import redis

from distillguard.detect.scorer import OnlineScorer, Score
from distillguard.detect.shared_scorer import SharedOnlineScorer
from distillguard.events.signals import RequestSignals
from distillguard.ingest.archive import Record
from distillguard.timefmt import rfc3339_from_epoch_us

VERDICTS_KEY = "distillguard:verdicts"


class VerdictOutput(Protocol):
    def write(self, scores: list[Score]) -> None: ...

    def close(self) -> None: ...


def score_record(score: Score, source: str) -> dict[str, Any]:
    return {**score.to_json(), "at": rfc3339_from_epoch_us(score.at_us), "events": score.events, "source": source}


class RedisVerdicts:
    """Latest score per account in a Redis hash, one pipelined HSET per batch."""

    def __init__(self, client: redis.Redis, source: str, key: str = VERDICTS_KEY) -> None:
        self._client = client
        self._source = source
        self.key = key

    def write(self, scores: list[Score]) -> None:
        if scores:
            mapping = {s.account_id: orjson.dumps(score_record(s, self._source)) for s in scores}
            self._client.hset(self.key, mapping=mapping)  # type: ignore[arg-type]

    def close(self) -> None:
        """The client belongs to the worker."""


class JsonlVerdicts:
    """Scores appended to a JSONL file, flushed per batch."""

    def __init__(self, path: Path, source: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[bytes] = path.open("ab")
        self._source = source

    def write(self, scores: list[Score]) -> None:
        for score in scores:
            self._handle.write(orjson.dumps(score_record(score, self._source)) + b"\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class Scoring:
    """The scorer and where its verdicts go; fed the records a worker archived, batch by batch."""

    def __init__(self, scorer: OnlineScorer | SharedOnlineScorer, output: VerdictOutput) -> None:
        self.scorer = scorer
        self.output = output
        self.scores_written = 0

    def feed(self, records: Iterable[Record]) -> None:
        observe = self.scorer.observe
        for record in records:
            if not isinstance(record.signals, RequestSignals):  # the worker enriches checked for the scorer
                continue
            event = record.event
            usage = (event.get("response") or {}).get("usage") or {}
            observe(
                str(event["account_id"]),
                record.ts_us,
                record.signals,
                int((event.get("response") or {}).get("status") or 0),
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                event.get("model"),
            )
        scores = self.scorer.flush()
        self.output.write(scores)
        self.scores_written += len(scores)

    def close(self) -> None:
        self.output.close()
