"""Online scoring: account state updated per event, risk recomputed in small batches.

Updating state is cheap and happens for every event; scoring (rules, and the learned model when loaded) runs for
an account every ``rescore_every`` of its events, batched across accounts so the model's vectorised prediction
is used. The gateway flushes the batch off the request path every few milliseconds; the batch analyzer flushes
every few thousand events. Either way a verdict is at most ``rescore_every - 1`` events behind the traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from distillguard.detect.features import FEATURES, AccountState, ModelClock
from distillguard.detect.reasons import Reason
from distillguard.detect.rules import score_rules
from distillguard.detect.signals import RequestSignals
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, FLAGGED, Verdict, verdict_for

if TYPE_CHECKING:
    from distillguard.detect.model import RiskModel


class RiskAdjuster(Protocol):
    """Evidence from outside the account's own traffic (partner intel) that may move its risk, with the reason."""

    def adjust(self, account_id: str, risk: float, reasons: list[Reason]) -> tuple[float, Reason | None]: ...


# A rule contribution at least this large counts as a reason that explains a flag.
UNEXPLAINED_REASON_WEIGHT = 1.0
# The model alone may throttle (never more) only at or above this risk.
MODEL_ALONE_CONFIDENT = 0.95


@dataclass(slots=True)
class Score:
    account_id: str
    risk: float
    verdict: Verdict
    reasons: list[Reason]
    rules_risk: float
    model_risk: float | None
    at_us: int
    events: int

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "risk": round(self.risk, 6),
            "verdict": self.verdict,
            "rules_risk": round(self.rules_risk, 6),
            "model_risk": None if self.model_risk is None else round(self.model_risk, 6),
            "reasons": [r.to_json() for r in self.reasons],
        }

    def to_record(self) -> dict[str, Any]:
        """:meth:`to_json` with the time of the last event scored and the number of events: all of the score."""
        return {**self.to_json(), "at_us": self.at_us, "events": self.events}

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Score:
        """The score :meth:`to_record` gave."""
        model_risk = doc.get("model_risk")
        return cls(
            account_id=str(doc["account_id"]),
            risk=float(doc["risk"]),
            verdict=doc["verdict"],
            reasons=[Reason.from_json(r) for r in doc["reasons"]],
            rules_risk=float(doc["rules_risk"]),
            model_risk=None if model_risk is None else float(model_risk),
            at_us=int(doc["at_us"]),
            events=int(doc["events"]),
        )


@dataclass(slots=True)
class _Tracked:
    state: AccountState
    score: Score | None = None
    first_flagged_us: int | None = None
    events_until_flagged: int | None = None
    pending: bool = False  # queued, or in a batch being scored
    taken: bool = False  # in a batch being scored
    # A rescoring point (or outside evidence) reached after the account's batch was taken: scored again at once
    # when that batch completes, so a slow round never leaves the verdict behind the traffic.
    missed: bool = False


@dataclass
class AccountInfo:
    created_at: datetime | None = None
    verified: bool = False

    @property
    def created_us(self) -> int | None:
        return int(self.created_at.timestamp() * 1_000_000) if self.created_at is not None else None

    def apply(self, state: AccountState) -> None:
        """Give an account's state what its metadata says (verification, age)."""
        state.verified = self.verified
        if self.created_at is not None:
            state.created_us = self.created_us


class OnlineScorer:
    def __init__(
        self,
        model: RiskModel | None = None,
        thresholds: Mapping[Verdict, float] = DEFAULT_THRESHOLDS,
        rescore_every: int = 8,
        accounts: Mapping[str, AccountInfo] | None = None,
    ) -> None:
        self.model = model
        self.thresholds = thresholds
        self.rescore_every = rescore_every
        self.clock = ModelClock()
        self._accounts: dict[str, _Tracked] = {}
        self._info = dict(accounts or {})
        self._queue: list[str] = []
        # Partner intel (intel/trust.py) when the deployment imports it; applied after rules and model.
        self.adjuster: RiskAdjuster | None = None

    def set_account(self, account_id: str, info: AccountInfo) -> None:
        self._info[account_id] = info
        tracked = self._accounts.get(account_id)
        if tracked is not None:
            info.apply(tracked.state)

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
        tracked = self._accounts.get(account_id)
        if tracked is None:
            tracked = self._accounts[account_id] = _Tracked(AccountState())
            info = self._info.get(account_id)
            if info is not None:
                info.apply(tracked.state)
        released = self.clock.observe(model, ts_us)
        state = tracked.state
        state.update(ts_us, signals, status, prompt_tokens, completion_tokens, model, released)
        if state.events % self.rescore_every == 0 or state.events <= 2:
            self._due(tracked, account_id)

    def touch(self, account_id: str) -> None:
        """Rescore an account at the next flush although it sent nothing new (new outside evidence about it)."""
        tracked = self._accounts.get(account_id)
        if tracked is not None:
            self._due(tracked, account_id)

    def _due(self, tracked: _Tracked, account_id: str) -> None:
        if not tracked.pending:
            tracked.pending = True
            self._queue.append(account_id)
        elif tracked.taken:
            tracked.missed = True  # its batch is being scored on an older state

    def flush(self) -> list[Score]:
        """Score every account queued since the last flush; returns the new scores."""
        batch = self.take()
        try:
            batch.predict()
            return self.complete(batch)
        except BaseException:
            self.abandon(batch)
            raise

    def take(self) -> Batch:
        """Step 1 of a flush, on the thread that updates state: the queued accounts' feature vectors."""
        queue, self._queue = self._queue, []
        for account_id in queue:
            tracked = self._accounts[account_id]
            tracked.taken, tracked.missed = True, False  # this batch holds its latest state
        return self.batch_of([(a, self._accounts[a].state) for a in queue])

    def complete(self, batch: Batch) -> list[Score]:
        """Step 3, on the same thread as step 1: rules, verdicts, and first-flag bookkeeping."""
        scores = self.scores_of(batch)
        for score in scores:
            tracked = self._accounts[score.account_id]
            tracked.taken = False
            tracked.pending = tracked.missed
            if tracked.missed:
                tracked.missed = False
                self._queue.append(score.account_id)
            tracked.score = score
            if tracked.first_flagged_us is None and score.verdict in FLAGGED:
                tracked.first_flagged_us = score.at_us
                tracked.events_until_flagged = score.events
        return scores

    def abandon(self, batch: Batch) -> None:
        """Instead of step 3 when the round failed (the model raised, or the round was cancelled): the batch's
        accounts go back to the queue, as a rescoring point reached during the round would, so the next round scores
        them on their latest state; their verdicts stay at the last score meanwhile. Without this they would stay
        taken, and no later call could queue them again in this process."""
        for account_id in batch.accounts:
            tracked = self._accounts[account_id]
            if tracked.taken:  # still pending, and out of the queue since take: queued once, never twice
                tracked.taken = tracked.missed = False
                self._queue.append(account_id)

    def info(self, account_id: str) -> AccountInfo | None:
        """The metadata given for an account (constructor or :meth:`set_account`), if any."""
        return self._info.get(account_id)

    def score_vectors(self, accounts: list[str], vectors: list[list[float]], at: list[tuple[int, int]]) -> list[Score]:
        """Scores of accounts whose feature vectors were computed elsewhere (a batch engine that aggregates the
        events itself): the same rules, model and gate as every other score. ``at``: (last event us, events)."""
        batch = Batch(self.model, accounts, vectors, at)
        batch.predict()
        return self.scores_of(batch)

    def batch_of(self, states: list[tuple[str, AccountState]]) -> Batch:
        """The feature vectors of ``states`` (account, state), ready for the model."""
        return Batch(
            self.model,
            [a for a, _ in states],
            [st.vector() for _, st in states],
            [(st.last_us, st.events) for _, st in states],
        )

    def scores_of(self, batch: Batch) -> list[Score]:
        """Scores as of each account's latest event included in the batch."""
        scores = []
        version = self.model.version if self.model is not None else ""
        for i, account_id in enumerate(batch.accounts):
            features = dict(zip(FEATURES, batch.vectors[i], strict=True))
            rules = score_rules(features)
            reasons = list(rules.reasons)
            model_risk = None if batch.model_risks is None else float(batch.model_risks[i])
            # Measured: taking max(rules, model) flagged evaluation runs and researchers on the rules alone; the
            # calibrated model decides, and the gate keeps it from acting on an unexplained number.
            risk = rules.risk if model_risk is None else self._gate(model_risk, rules.reasons)
            if model_risk is not None:
                reasons.append(
                    Reason(
                        "learned_model",
                        round(model_risk, 4),
                        f"the learned model ({version}) puts the risk at {model_risk:.2f}",
                    )
                )
            if self.adjuster is not None:
                risk, outside = self.adjuster.adjust(account_id, risk, reasons)
                if outside is not None:
                    reasons.append(outside)
            at_us, events = batch.at[i]
            scores.append(
                Score(
                    account_id, risk, verdict_for(risk, self.thresholds), reasons, rules.risk, model_risk, at_us, events
                )
            )
        return scores

    def _gate(self, model_risk: float, reasons: list[Reason]) -> float:
        """No enforcement on an unexplained number: without a rule reason (weight >= 1) the model alone can put an
        account on watch, or throttle it when very confident; stronger verdicts need a reason a reviewer can check.
        """
        if any(r.weight >= UNEXPLAINED_REASON_WEIGHT for r in reasons):
            return model_risk
        if model_risk >= MODEL_ALONE_CONFIDENT:
            return min(model_risk, self.thresholds.get("degrade", 1.0) - 1e-6)
        return min(model_risk, self.thresholds.get("throttle", 1.0) - 1e-6)

    def score(self, account_id: str) -> Score | None:
        tracked = self._accounts.get(account_id)
        return tracked.score if tracked is not None else None

    def final_scores(self) -> list[tuple[Score, int | None, int | None]]:
        """Score every account on all it did; with when it was first flagged online (if its final verdict is)."""
        items = sorted(self._accounts.items())
        batch = self.batch_of([(a, t.state) for a, t in items])
        batch.predict()
        out: list[tuple[Score, int | None, int | None]] = []
        for (_, tracked), score in zip(items, self.scores_of(batch), strict=True):
            first: int | None = None
            until: int | None = None
            if score.verdict in FLAGGED:
                first, until = tracked.first_flagged_us, tracked.events_until_flagged
                if first is None:  # flagged only by the final pass over the whole history
                    first, until = tracked.state.last_us, tracked.state.events
            out.append((score, first, until))
        return out


@dataclass
class Batch:
    """Accounts being rescored: their vectors, and the model's risks once :meth:`predict` has run.

    ``predict`` touches only this object, so the gateway runs it on a worker thread while the event loop goes on
    updating account state.
    """

    model: RiskModel | None
    accounts: list[str]
    vectors: list[list[float]]
    at: list[tuple[int, int]]
    model_risks: Any = None

    def predict(self) -> None:
        if self.model is not None and self.vectors:
            self.model_risks = self.model.predict_risk(self.vectors)
