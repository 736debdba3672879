"""The gateway's online scores, persisted for the console: the newest per account, written once a second, off the loop.

Each rescoring round hands its scores over (a dictionary assignment per rescored account: the per-call path does
nothing new). Every ``interval_s`` the accounts scored since the last write go to the store in one transaction on
a worker thread (store/scores.py); an account rescored several times in between is written once, with its newest
score. A failed write is logged (once per outage), counted, and its scores wait for the next one unless a newer
score came meanwhile: the store being slow or away never blocks the gateway or its calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import Engine

from distillguard.background import Background
from distillguard.detect.scorer import Score
from distillguard.store.scores import ScoreRecord, ScoreStore
from distillguard.timefmt import from_epoch_us

log = logging.getLogger(__name__)

WRITE_INTERVAL_S = 1.0


def record(score: Score) -> ScoreRecord:
    return ScoreRecord(
        score.account_id,
        round(score.risk, 6),
        score.verdict,
        [r.to_json() for r in score.reasons],
        score.events,
        from_epoch_us(score.at_us),
    )


class ScoreWriter:
    def __init__(self, engine: Engine, interval_s: float = WRITE_INTERVAL_S, store: ScoreStore | None = None) -> None:
        self.store = store or ScoreStore(engine)
        self.interval_s = interval_s
        self._pending: dict[str, Score] = {}
        # The batch being written on a worker thread, and its outcome.
        self._writing: tuple[dict[str, Score], asyncio.Future[bool]] | None = None
        self._failing = False
        # Read by the gateway's /metrics.
        self.written = 0
        self.failures = 0
        self._task = Background("distillguard-score-writer", self.run)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def offer(self, scores: Iterable[Score]) -> None:
        """A rescoring round's scores (on the event loop): each replaces the account's score waiting to be written."""
        pending = self._pending
        for score in scores:
            pending[score.account_id] = score

    def _write(self, batch: dict[str, Score]) -> bool:
        """Write a batch (on a worker thread); False when it failed."""
        try:
            self.store.write([record(s) for s in batch.values()])
        except Exception:  # any failure (database away, locked, a bad value) must leave the gateway serving
            self.failures += 1
            if not self._failing:
                log.exception("writing scores failed; they are kept and written again at the next interval")
            self._failing = True
            return False
        if self._failing:
            log.warning("writing scores works again")
        self._failing = False
        self.written += len(batch)
        return True

    async def write_pending(self) -> None:
        """Write what is pending now; on failure, what was taken waits again (where no newer score replaced it)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        # Shielded: a stop arriving mid-write lets the thread finish, and stop() settles the batch.
        self._writing = (batch, asyncio.ensure_future(asyncio.to_thread(self._write, batch)))
        written = await asyncio.shield(self._writing[1])
        self._writing = None
        if not written:
            self._requeue(batch)

    def _requeue(self, batch: dict[str, Score]) -> None:
        for account_id, score in batch.items():
            self._pending.setdefault(account_id, score)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.write_pending()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Stop writing periodically; wait for a write in flight, then write what is left (best effort)."""
        await self._task.stop()
        if self._writing is not None:
            batch, writing = self._writing
            self._writing = None
            if not await writing:
                self._requeue(batch)
        await self.write_pending()
