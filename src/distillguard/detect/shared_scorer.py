"""Online scoring over account state shared in Redis: every replica folds the calls it served into one state.

The in-process :class:`~distillguard.detect.scorer.OnlineScorer` holds each account's state in the memory of the
process that served the calls, so N replicas (or ``serve --workers N``) each score a 1/N slice of an account. Here
each process only buffers its calls; a round (every ``detect.flush_interval_ms``, off the request path) does:

1. ``take`` (event loop): swap out the buffered calls and the accounts to rescore;
2. ``load`` (worker thread): one pipelined read of those accounts' states and scores, and of the shared model
   clock; fold each account's buffered calls into its state in time order; compute the feature vectors of those
   due for rescoring (every ``rescore_every`` calls of the account's *total*, as in process) and run the model;
3. ``judge`` (event loop): rules, the model gate and partner intel: the same scoring as in process;
4. ``commit`` (worker thread): compare-and-set every state with its new score (detect/shared_state.py);
5. ``settle`` (event loop): remember the new scores (the verdict cache a request reads); an account another
   replica wrote meanwhile keeps its calls buffered for the next round, which reloads and folds again.

The verdict cache: an account loaded with a score another replica wrote, and not rescored here, adopts that score,
and the round hands it to the response policy like its own: every replica acts on the verdict over all the calls.

Redis down or slow: a round fails as a whole and its calls stay buffered (at most ``max_pending`` calls, those of
the round in flight included; newer ones are dropped and counted beyond that), requests go on being served with the
last known verdicts, and the next round after Redis answers again catches up. A commit whose reply was lost is
recognised on the next load by its round token (the last 8 writers' tokens are kept), so its calls are neither
lost nor folded twice. A round whose model, stored state or partner intel raises is abandoned the same way
(``abandon``): its calls and touches wait for the next round, which folds and scores them again.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
import redis

from distillguard.detect.features import CLOCK_MODEL_CAP, AccountState, ModelClock
from distillguard.detect.scorer import Batch, OnlineScorer, Score
from distillguard.detect.shared_state import RedisAccountStates, Stored, Write
from distillguard.detect.signals import RequestSignals
from distillguard.detect.state_codec import StateCodecError, decode, encode

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Call:
    """One served call, waiting to be folded into its account's shared state."""

    ts_us: int
    signals: RequestSignals
    status: int
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None


@dataclass
class Round:
    """One round's accounts, from ``take`` to ``settle``."""

    token: str
    calls: dict[str, list[Call]]
    touched: set[str]
    accounts: list[str] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    states: list[AccountState] = field(default_factory=list)
    batch: Batch | None = None
    scores: list[Score] = field(default_factory=list)
    landed: list[bool] = field(default_factory=list)
    failed: bool = False
    held: int = 0  # calls taken, still counted as pending until the round settles or is abandoned
    sent: bool = False  # the commit went out: it may have landed even if no reply came back

    @property
    def empty(self) -> bool:
        return not self.calls and not self.touched


@dataclass
class SharedStats:
    rounds: int = 0
    failures: int = 0
    conflicts: int = 0
    adopted: int = 0
    dropped: int = 0
    redis_up: bool = True


class SharedOnlineScorer:
    """The :class:`OnlineScorer` interface the gateway uses, with account state in Redis (module docstring)."""

    def __init__(
        self,
        scorer: OnlineScorer,
        states: RedisAccountStates,
        max_pending: int = 100_000,
        cache_accounts: int = 100_000,
    ) -> None:
        self.scorer = scorer  # rules, model, gate, thresholds, partner intel and account metadata
        self.states = states
        self.max_pending = max_pending
        self.cache_accounts = cache_accounts
        self.clock = ModelClock()
        self.stats = SharedStats()
        self._calls: dict[str, list[Call]] = {}
        self._pending = 0
        self._touched: set[str] = set()
        self._scores: OrderedDict[str, Score] = OrderedDict()
        # Accounts whose last commit's reply was lost: that round's token, and the calls it carried (buffered
        # again; dropped at the next load if the token shows the commit landed).
        self._uncertain: dict[str, tuple[str, list[Call]]] = {}

    # what the gateway calls ---------------------------------------------------------------------------
    def observe(
        self,
        account_id: str,
        ts_us: int,
        signals: RequestSignals,
        status: int,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        model: str | None,
    ) -> None:
        if self._pending >= self.max_pending:
            self.stats.dropped += 1
            return
        self._calls.setdefault(account_id, []).append(
            Call(ts_us, signals, status, prompt_tokens, completion_tokens, model)
        )
        self._pending += 1

    def touch(self, account_id: str) -> None:
        self._touched.add(account_id)

    def score(self, account_id: str) -> Score | None:
        return self._scores.get(account_id)

    @property
    def pending(self) -> int:
        """Calls served and not yet folded into the shared state."""
        return self._pending

    def flush(self) -> list[Score]:
        """One whole round on the calling thread (shutdown, tools and tests)."""
        rnd = self.take()
        if rnd.empty:
            return []
        try:
            self.load(rnd)
            self.judge(rnd)
            self.commit(rnd)
        except BaseException:
            self.abandon(rnd)
            raise
        return self.settle(rnd)

    # a round --------------------------------------------------------------------------------------------
    def take(self) -> Round:
        calls, self._calls = self._calls, {}
        touched, self._touched = self._touched, set()
        # The round's calls stay counted until it ends: a round that keeps failing hands them back each time, and
        # the calls served meanwhile must not grow the buffer past ``max_pending``.
        held = sum(len(c) for c in calls.values())
        return Round(uuid.uuid4().hex, calls, touched, held=held)

    def load(self, rnd: Round) -> None:
        """Step 2, on a worker thread."""
        rnd.accounts = sorted(rnd.calls.keys() | rnd.touched)
        for calls in rnd.calls.values():
            calls.sort(key=lambda c: c.ts_us)
        earliest, models = self._round_clock(rnd.calls)
        try:
            rnd.stored, clock = self.states.load(rnd.accounts, earliest, models)
        except redis.RedisError as exc:
            self._failed(rnd, exc)
            return
        if clock is not None:
            self.clock.log_start_us = clock[0]
            self.clock.first_seen.update(clock[1])
        due: list[tuple[str, AccountState]] = []
        for account_id, stored in zip(rnd.accounts, rnd.stored, strict=True):
            state = self._state(account_id, stored)
            calls = rnd.calls[account_id] = self._settled_calls(account_id, stored, rnd.calls.get(account_id, []))
            before = state.events
            for call in calls:
                released = self.clock.observe(call.model, call.ts_us)
                state.update(
                    call.ts_us,
                    call.signals,
                    call.status,
                    call.prompt_tokens,
                    call.completion_tokens,
                    call.model,
                    released,
                )
            rnd.states.append(state)
            every = self.scorer.rescore_every
            crossed = state.events // every != before // every or (bool(calls) and state.events <= 2)
            if crossed or account_id in rnd.touched or stored.score is None:
                due.append((account_id, state))
        rnd.batch = self.scorer.batch_of(due)
        rnd.batch.predict()

    def judge(self, rnd: Round) -> None:
        """Step 3, on the event loop (partner intel is read there)."""
        if not rnd.failed and rnd.batch is not None:
            rnd.scores = self.scorer.scores_of(rnd.batch)

    def commit(self, rnd: Round) -> None:
        """Step 4, on a worker thread."""
        if rnd.failed:
            return
        scored = {s.account_id: s for s in rnd.scores}
        writes = []
        for account_id, stored, state in zip(rnd.accounts, rnd.stored, rnd.states, strict=True):
            doc, packed = encode(state)
            score = scored.get(account_id)
            record = None if score is None else orjson.dumps(score.to_record())
            writes.append(Write(account_id, stored.version, doc, packed, record, rnd.token))
        rnd.sent = True
        try:
            rnd.landed = self.states.save(writes)
        except redis.RedisError as exc:
            self._failed(rnd, exc)

    def settle(self, rnd: Round) -> list[Score]:
        """Step 5, on the event loop: the scores of this round's accounts, those it computed and wrote and those
        it adopted (so that every replica's response policy acts on the shared verdict)."""
        self.stats.rounds += 1
        if rnd.failed:
            self.stats.failures += 1
            self.abandon(rnd)
            return []
        self._pending -= rnd.held
        if not self.stats.redis_up:
            self.stats.redis_up = True
            log.info("online state in Redis reachable again", extra={"pending": self._pending})
        scored = {s.account_id: s for s in rnd.scores}
        out: list[Score] = []
        for account_id, stored, landed in zip(rnd.accounts, rnd.stored, rnd.landed, strict=True):
            if not landed:
                self.stats.conflicts += 1
                self._requeue(rnd, account_id)
                continue
            score = scored.get(account_id)
            if score is None and stored.score is not None:
                score = self._adopt(account_id, stored.score)
            if score is not None:
                self._remember(score)
                out.append(score)
        return out

    def abandon(self, rnd: Round) -> None:
        """Instead of ``settle``, once, for a round that failed before its commit came back (Redis, or the model,
        a stored state or partner intel raised): its calls go back in front of those buffered since, and its
        touches with them, so the next round folds and scores them; requests keep the last verdicts meanwhile."""
        self._pending -= rnd.held
        for account_id in rnd.calls.keys() | rnd.touched:
            self._requeue(rnd, account_id)
            if rnd.sent:  # the commit may have landed: the next load tells by the round's token
                self._uncertain[account_id] = (rnd.token, rnd.calls.get(account_id, []))

    # helpers ----------------------------------------------------------------------------------------------
    def _adopt(self, account_id: str, record: bytes) -> Score | None:
        """Another replica's score, stored with the state; one that cannot be read (another version, a damaged
        record) is not adopted, and the account is scored here in the next round, which writes a good one."""
        try:
            score = Score.from_record(orjson.loads(record))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("stored score of %s unreadable; scoring it afresh (%r)", account_id, exc)
            self._touched.add(account_id)
            return None
        self.stats.adopted += 1
        return score

    def _state(self, account_id: str, stored: Stored) -> AccountState:
        state = AccountState()
        if stored.doc is not None and stored.packed is not None:
            try:
                state = decode(stored.doc, stored.packed)
            except StateCodecError as exc:
                log.warning("shared account state unreadable; starting it afresh (%s)", exc)
        info = self.scorer.info(account_id)
        if info is not None:
            info.apply(state)
        return state

    def _settled_calls(self, account_id: str, stored: Stored, calls: list[Call]) -> list[Call]:
        """``calls`` less those a commit whose reply was lost had already folded in (it left its token)."""
        uncertain = self._uncertain.pop(account_id, None)
        if uncertain is None or stored.token is None or uncertain[0] not in stored.token.decode().split():
            return calls
        carried = {id(c) for c in uncertain[1]}
        return [c for c in calls if id(c) not in carried]

    def _round_clock(self, calls: Mapping[str, list[Call]]) -> tuple[int | None, dict[str, int]]:
        earliest: int | None = None
        models: dict[str, int] = {}
        for account_calls in calls.values():
            for call in account_calls:
                earliest = call.ts_us if earliest is None else min(earliest, call.ts_us)
                if call.model is not None and (call.model in models or len(models) < CLOCK_MODEL_CAP):
                    models[call.model] = min(models.get(call.model, call.ts_us), call.ts_us)
        return earliest, models

    def _requeue(self, rnd: Round, account_id: str) -> None:
        """Put a round's calls of an account back in front of those buffered since."""
        calls = rnd.calls.get(account_id)
        if calls:
            self._calls[account_id] = calls + self._calls.get(account_id, [])
            self._pending += len(calls)
        if account_id in rnd.touched:
            self._touched.add(account_id)

    def _remember(self, score: Score) -> None:
        self._scores[score.account_id] = score
        self._scores.move_to_end(score.account_id)
        while len(self._scores) > self.cache_accounts:
            self._scores.popitem(last=False)

    def _failed(self, rnd: Round, exc: redis.RedisError) -> None:
        rnd.failed = True
        if self.stats.redis_up:
            self.stats.redis_up = False
            log.warning("online state in Redis unreachable; buffering calls (%s)", exc)
