"""An account's standing and how scores move it: escalate at once, relax with hysteresis, lapse when stale.

- **Escalation** is immediate: a verdict above the standing's level raises it. Above
  ``review.automatic_up_to`` the standing is raised only to that level and the proposal waits (``pending``) for
  a reviewer; a level at or above ``review.open_case_at`` opens a case.
- **Relaxation** needs the risk to fall ``hysteresis`` below the threshold of the current level *and* the level to
  have held ``min_hold_s``: a risk hovering at a threshold cannot flap the account between two levels.
- **Expiry**: an automatic level no score has supported for ``expire_after_s`` lapses to the latest verdict.
- A level a reviewer **confirmed** holds until reversed; after a **reversal** detection does not act on the
  account for ``review.reversal_exempt_days``.

Everything here is pure: the caller persists the changes (respond/book.py) and the audit trail records each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from distillguard.config import Level, RespondConfig
from distillguard.detect.verdicts import Thresholds
from distillguard.respond.policy import RANK, weaker
from distillguard.timefmt import rfc3339_from_epoch_us

Source = Literal["detector", "campaign", "review"]
ChangeKind = Literal["escalated", "held_for_review", "relaxed", "expired"]
SECOND_US = 1_000_000


@dataclass(slots=True)
class Standing:
    account_id: str
    level: Level = "allow"
    pending: Level | None = None
    confirmed: bool = False
    exempt_until_us: int | None = None
    case_id: str | None = None
    risk: float | None = None
    reasons: list[str] = field(default_factory=list)
    source: Source = "detector"
    campaign: str | None = None  # the cluster id of the campaign case that moved it, if any
    since_us: int = 0
    last_support_us: int = 0
    # The latest verdict seen (memory only): where an expired level falls back to.
    verdict: Level = "allow"
    # The audit entry that last changed it.
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "level": self.level,
            "pending": self.pending,
            "confirmed": self.confirmed,
            "exempt_until": rfc3339_from_epoch_us(self.exempt_until_us) if self.exempt_until_us else None,
            "case_id": self.case_id,
            "risk": self.risk,
            "reasons": self.reasons,
            "source": self.source,
            "campaign": self.campaign,
            "since": rfc3339_from_epoch_us(self.since_us) if self.since_us else None,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One move of a standing, as the audit trail records it."""

    account_id: str
    kind: ChangeKind
    before: Level
    after: Level
    pending: Level | None
    risk: float | None
    reasons: tuple[str, ...]
    source: Source
    # The proposed level reaches review.open_case_at: a case must exist for it.
    needs_case: bool

    def detail(self) -> dict[str, Any]:
        return {
            "from": self.before,
            "to": self.after,
            "pending": self.pending,
            "risk": None if self.risk is None else round(self.risk, 4),
            "reasons": list(self.reasons),
            "source": self.source,
        }


class Transitions:
    def __init__(self, config: RespondConfig, thresholds: Thresholds) -> None:
        self.config = config
        self.thresholds = thresholds
        self._cap: Level = config.review.automatic_up_to
        self._open_at = RANK[config.review.open_case_at]
        self._min_hold_us = int(config.min_hold_s * SECOND_US)
        self._expire_us = int(config.expire_after_s * SECOND_US)

    def on_verdict(
        self,
        st: Standing,
        verdict: Level,
        risk: float | None,
        reasons: list[str],
        now_us: int,
        source: Source = "detector",
    ) -> Change | None:
        """Move ``st`` for a new verdict; returns the change, or None when the standing stays where it is."""
        st.risk, st.verdict = risk, verdict
        if st.confirmed or (st.exempt_until_us is not None and now_us < st.exempt_until_us):
            return None  # a reviewer's decision stands
        rank = RANK[verdict]
        if rank >= RANK[st.level]:
            st.last_support_us = now_us
        proposed_before = st.pending or st.level
        if rank > RANK[proposed_before]:
            applied = weaker(verdict, self._cap)
            before = st.level
            if RANK[applied] > RANK[st.level]:
                st.level, st.since_us = applied, now_us
            st.pending = verdict if rank > RANK[self._cap] else None
            st.reasons, st.source = list(reasons), source
            kind: ChangeKind = "escalated" if st.level != before else "held_for_review"
            return Change(
                st.account_id, kind, before, st.level, st.pending, risk, tuple(reasons), source, rank >= self._open_at
            )
        if rank < RANK[st.level] and risk is not None and self._relaxable(st, risk, now_us):
            return self._move(st, verdict, "relaxed", source, now_us)
        return None

    def _relaxable(self, st: Standing, risk: float, now_us: int) -> bool:
        threshold = self.thresholds.get(st.level, 0.0)
        return risk < threshold - self.config.hysteresis and now_us - st.since_us >= self._min_hold_us

    def expire(self, st: Standing, now_us: int) -> Change | None:
        """Let an automatic level nothing has supported for ``expire_after_s`` lapse to the latest verdict."""
        if st.level == "allow" or st.confirmed or now_us - st.last_support_us < self._expire_us:
            return None
        target = st.verdict if RANK[st.verdict] < RANK[st.level] else "allow"
        return self._move(st, target, "expired", st.source, now_us)

    @staticmethod
    def _move(st: Standing, target: Level, kind: ChangeKind, source: Source, now_us: int) -> Change:
        before = st.level
        st.level, st.pending, st.since_us = target, None, now_us
        return Change(st.account_id, kind, before, target, None, st.risk, tuple(st.reasons), source, False)
