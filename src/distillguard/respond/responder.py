"""The gateway's side of the response: standings in memory, a decision per call, changes persisted and synced.

- ``decide(account)`` runs on every call: a dictionary lookup and the policy's few comparisons.
- ``on_verdicts`` takes the scorer's verdicts (from the gateway's rescoring task) and moves standings in memory at
  once, so the very next call sees the new level; the moves are persisted, with their audit entries and cases, by
  ``run`` a moment later, off the event loop.
- ``run`` also reads what changed elsewhere (a reviewer's decision from the CLI or another replica, a campaign
  case) every ``sync_interval_s``, lets stale automatic levels lapse, and watches its dependencies: if the scorer
  stops finishing rescoring rounds or the store stops answering, ``fail_mode`` decides what calls get, and the
  gateway's logs and metrics say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from distillguard.background import Background
from distillguard.config import Level, RespondConfig
from distillguard.respond.book import CaseBook, new_case_id
from distillguard.respond.policy import Decision, Policy
from distillguard.respond.standing import Change, Standing

if TYPE_CHECKING:
    from distillguard.store.models import Account

log = logging.getLogger(__name__)

# What a call gets when the response is unavailable and ``fail_mode = "closed"``.
FAIL_CLOSED = Decision("block", frozenset({"block"}), None, True, "fail_closed")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One account's verdict from the scorer, in the terms the response needs."""

    account_id: str
    level: Level
    risk: float
    reasons: list[str]
    at_us: int


class Responder:
    def __init__(self, config: RespondConfig, book: CaseBook, watch_scorer: bool) -> None:
        self.config = config
        self.book = book
        self.policy = Policy(config)
        self.transitions = book.transitions
        self.standings: dict[str, Standing] = {}
        self._active: set[str] = set()  # accounts whose level is above allow (the expiry sweep's work list)
        self._queue: list[tuple[Standing, Change]] = []
        self._seq = 0
        self._watch_scorer = watch_scorer
        self._scorer_seen = time.monotonic()
        self._scorer_failing = False
        self.scorer_ok = True
        self.store_ok = True
        self.available = True
        self._task = Background("distillguard-response-sync", self.run)
        self._closed = config.fail_mode == "closed"

    # per call ---------------------------------------------------------------------------------------
    def decide(self, account: Account) -> Decision:
        if not self.available and self._closed and not self.policy.allowlisted(account):
            return FAIL_CLOSED
        return self.policy.decide(self.standings.get(account.account_id), account)

    def campaign_of(self, account_id: str) -> str | None:
        """The campaign (cluster id) a campaign case took the account in with, if any."""
        st = self.standings.get(account_id)
        return st.campaign if st is not None else None

    # from the scorer --------------------------------------------------------------------------------
    def on_verdicts(self, verdicts: Iterable[Verdict]) -> None:
        """Move standings for a round of verdicts (every account rescored, flagged or not)."""
        self._scorer_seen = time.monotonic()
        self._scorer_failing = False
        for v in verdicts:
            st = self.standings.get(v.account_id)
            if st is None:
                if v.level == "allow":
                    continue
                st = self.standings[v.account_id] = Standing(v.account_id)
            change = self.transitions.on_verdict(st, v.level, v.risk, v.reasons, v.at_us)
            if change is None:
                continue
            if change.needs_case and st.case_id is None:
                # The case's id exists from this moment: the very next refusal can quote it (it is written with
                # the move at the next sync).
                st.case_id = new_case_id()
            self._track(st)
            self._queue.append((st, change))
            log.info(
                "account standing changed",
                extra={
                    "account_id": v.account_id,
                    "change": change.kind,
                    "from": change.before,
                    "to": change.after,
                    "pending_review": change.pending,
                    "risk": round(v.risk, 4),
                    "reasons": v.reasons,
                },
            )

    def scorer_failed(self) -> None:
        """The scorer raised in a rescoring round: unavailable until a round succeeds."""
        self._scorer_failing = True
        self._update_availability()

    def _track(self, st: Standing) -> None:
        if st.level == "allow":
            self._active.discard(st.account_id)
        else:
            self._active.add(st.account_id)

    # persistence and sync ---------------------------------------------------------------------------
    def load(self) -> None:
        """Read every standing from the store (at start)."""
        for st in self.book.standings_since(0):
            self.standings[st.account_id] = st
            self._track(st)
            self._seq = max(self._seq, st.seq)
        self._seq = max(self._seq, self.book.head())

    def refresh(self, account_ids: Iterable[str]) -> None:
        """Re-read some accounts' standings now (after a review taken through this process)."""
        for account_id in account_ids:
            self._adopt(self.book.standing(account_id))

    def _adopt(self, stored: Standing) -> None:
        current = self.standings.get(stored.account_id)
        if current is not None:
            if current.seq >= stored.seq:
                return  # ours (written from this process) or older than what we hold
            stored.verdict = current.verdict
        self.standings[stored.account_id] = stored
        self._track(stored)

    def sync(self, now_us: int) -> None:
        """Persist queued moves, read changes made elsewhere, and let stale levels lapse (runs in a thread)."""
        batch, self._queue = self._queue, []
        for account_id in list(self._active):
            st = self.standings.get(account_id)
            if st is not None:
                change = self.transitions.expire(st, now_us)
                if change is not None:
                    self._track(st)
                    batch.append((st, change))
        try:
            if batch:
                opened = self.book.record(batch)
                for case_id in opened:
                    log.info("case opened for review", extra={"case_id": case_id})
            for stored in self.book.standings_since(self._seq):
                self._seq = max(self._seq, stored.seq)
                self._adopt(stored)
        except SQLAlchemyError:
            self._queue = batch + self._queue
            if self.store_ok:
                log.exception("response store unavailable; fail mode %s applies", self.config.fail_mode)
            self.store_ok = False
        else:
            if not self.store_ok:
                log.warning("response store available again")
            self.store_ok = True

    def _update_availability(self) -> None:
        if self._watch_scorer:
            fresh = time.monotonic() - self._scorer_seen < self.config.scorer_stale_s and not self._scorer_failing
            if fresh and not self.scorer_ok:
                log.warning("scorer available again")
            elif not fresh and self.scorer_ok:
                log.error(
                    "scorer unavailable (no rescoring round finished); fail mode %s applies", self.config.fail_mode
                )
            self.scorer_ok = fresh
        available = self.scorer_ok and self.store_ok
        if available != self.available:
            log.warning(
                "response %s",
                "available" if available else "unavailable",
                extra={"scorer": self.scorer_ok, "store": self.store_ok, "fail_mode": self.config.fail_mode},
            )
        self.available = available

    async def run(self) -> None:
        interval = self.config.sync_interval_s
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.sync, time.time_ns() // 1000)
            self._update_availability()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        with contextlib.suppress(SQLAlchemyError):
            self.sync(time.time_ns() // 1000)
