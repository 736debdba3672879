"""The gateway's window onto detection: signals per call, account state per event, verdicts for the next call.

Signals are computed once, on the request path, and stored with the event. Account state is updated when the
event is recorded (a few microseconds); rescoring (rules and the learned model) runs in a background task every
``detect.flush_interval_ms`` for the accounts that changed, so the request path never waits for a model.

With ``detect.state_url`` set, account state lives in Redis, shared by every replica: the request path only
buffers the call, and the background round folds the buffered calls into the shared state
(detect/shared_scorer.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from distillguard.background import Background
from distillguard.config import DetectConfig
from distillguard.detect.features import CLOCK_MODEL_CAP
from distillguard.detect.model import configured_model
from distillguard.detect.scorer import AccountInfo, OnlineScorer, Score
from distillguard.detect.shared_scorer import SharedOnlineScorer
from distillguard.detect.shared_state import RedisAccountStates
from distillguard.detect.signals import RequestSignals, extract
from distillguard.detect.verdicts import Verdict
from distillguard.events.schema import Event
from distillguard.respond.responder import Responder
from distillguard.respond.responder import Verdict as ResponderVerdict
from distillguard.store.models import Account

if TYPE_CHECKING:
    from distillguard.gateway.scores import ScoreWriter
    from distillguard.intel.runtime import IntelRuntime

log = logging.getLogger(__name__)


class OnlineDetection:
    def __init__(self, config: DetectConfig) -> None:
        self.config = config
        thresholds: dict[Verdict, float] = {k: v for k, v in config.thresholds.items()}  # type: ignore[misc]
        self.scorer = OnlineScorer(configured_model(config), thresholds, config.rescore_every)
        # Where calls go: the scorer's own per-process state, or the state shared in Redis.
        self.state: OnlineScorer | SharedOnlineScorer = self.scorer
        self.shared: SharedOnlineScorer | None = None
        if config.state_url:
            from distillguard.events.stream import connect

            client = connect(config.state_url, config.state_timeout_ms / 1000)
            states = RedisAccountStates(client, config.state_prefix, config.state_ttl_s, CLOCK_MODEL_CAP)
            self.shared = SharedOnlineScorer(self.scorer, states, config.max_pending_calls, config.cache_accounts)
            self.state = self.shared
        self._known: set[str] = set()
        self._task = Background("distillguard-rescoring", self.run)
        # The shared round under way: at shutdown it is let finish, not cancelled (see ``_round``).
        self._inflight: asyncio.Future[list[Score]] | None = None
        # Who acts on verdicts (the response policy); told of every rescoring round and of failed ones.
        self.responder: Responder | None = None
        self.intel: IntelRuntime | None = None
        # Where each round's scores go for the console (the state store), if anywhere.
        self.scores: ScoreWriter | None = None

    def attach_intel(self, intel: IntelRuntime) -> None:
        """Partner intel: matched on every account and call, weighed by the scorer on every rescoring."""
        self.intel = intel
        self.scorer.adjuster = intel.evidence
        intel.on_changed = self._rescore

    def _rescore(self, accounts: list[str]) -> None:
        for account_id in accounts:
            self.state.touch(account_id)

    @staticmethod
    def signals(body: dict[str, Any], endpoint: str) -> RequestSignals:
        return extract(body, endpoint)

    def know(self, account: Account) -> None:
        """Give the scorer an account's age and verification, once per account and process."""
        if account.account_id not in self._known:
            self._known.add(account.account_id)
            self.scorer.set_account(account.account_id, AccountInfo(account.created_at, account.verified))
            if self.intel is not None:
                self.intel.on_account(account)

    def observe(self, event: Event, signals: RequestSignals) -> None:
        self.state.observe(
            event.account_id,
            event.ts_us,
            signals,
            event.status,
            event.prompt_tokens,
            event.completion_tokens,
            event.model,
        )
        if self.intel is not None and self.intel.on_call(event):
            self.state.touch(event.account_id)

    def current(self, account_id: str) -> Score | None:
        return self.state.score(account_id)

    async def run(self) -> None:
        interval = self.config.flush_interval_ms / 1000
        verdicts: dict[str, Verdict] = {}
        while True:
            await asyncio.sleep(interval)
            try:
                scores = await self._round()
            except Exception:
                log.exception("rescoring round failed")
                if self.responder is not None:
                    self.responder.scorer_failed()
                continue
            if self.responder is not None:
                self.responder.on_verdicts(
                    ResponderVerdict(s.account_id, s.verdict, s.risk, [r.signal for r in s.reasons], s.at_us)
                    for s in scores
                )
            if self.scores is not None:
                self.scores.offer(scores)
            for score in scores:
                previous = verdicts.get(score.account_id, "allow")
                if score.verdict != previous:
                    verdicts[score.account_id] = score.verdict
                    log.info(
                        "account verdict changed",
                        extra={
                            "account_id": score.account_id,
                            "from": previous,
                            "to": score.verdict,
                            "risk": round(score.risk, 4),
                            "events": score.events,
                            "reasons": [r.signal for r in score.reasons],
                        },
                    )

    async def _round(self) -> list[Score]:
        if self.shared is not None:
            # Shielded: cancelling the loop (``stop``) must not cancel a round whose worker thread may be folding or
            # writing its calls; that thread cannot be stopped, and the calls could not be put back safely.
            self._inflight = asyncio.ensure_future(self._shared_round(self.shared))
            return await asyncio.shield(self._inflight)
        batch = self.scorer.take()
        try:
            if batch.model is not None and batch.vectors:
                # The model runs off the event loop; state keeps changing meanwhile, the batch holds its vectors.
                await asyncio.to_thread(batch.predict)
            else:
                batch.predict()
            return list(self.scorer.complete(batch))
        except BaseException:
            # Failed (``run`` logs it) or cancelled (``stop``, whose last flush then scores them): the accounts go
            # back to the queue instead of staying taken for good. The worker thread only ever touches the batch.
            self.scorer.abandon(batch)
            raise

    @staticmethod
    async def _shared_round(shared: SharedOnlineScorer) -> list[Score]:
        rnd = shared.take()
        if rnd.empty:
            return []
        try:
            # Redis and the model off the event loop; rules and partner intel on it (intel changes there).
            await asyncio.to_thread(shared.load, rnd)
            shared.judge(rnd)
            await asyncio.to_thread(shared.commit, rnd)
        except Exception:
            # The model, a stored state or partner intel raised: the calls go back to the buffer. Not on
            # cancellation, unlike the in-process round: the worker thread may still be folding or writing them.
            shared.abandon(rnd)
            raise
        return shared.settle(rnd)

    def start(self) -> None:
        self._task.start()
        if self.scores is not None:
            self.scores.start()

    async def stop(self) -> None:
        await self._task.stop()
        finished: list[Score] = []
        inflight, self._inflight = self._inflight, None
        if inflight is not None and not inflight.done():
            try:
                finished = await inflight  # its calls are stored once it ends, neither lost nor folded twice
            except Exception:
                log.exception("rescoring round failed")  # its calls went back to the buffer: the flush takes them
        last = await asyncio.to_thread(self.state.flush) if self.shared is not None else self.scorer.flush()
        if self.scores is not None:
            self.scores.offer(finished + last)
            await self.scores.stop()
