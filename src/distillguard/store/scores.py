"""Scores in the state store: each account's newest score (``scores``) and its risk over time (``score_history``).

A history row is written when an account's verdict changes or its risk moves by at least ``history_step`` from the
last row written for it, so a timeline holds the moves that matter rather than every rescoring; each account keeps
its newest ``history_limit`` rows, older ones deleted in the same transaction. The gateway writes here once a
second (gateway/scores.py), ``distillguard analyze --data-dir`` once per analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from distillguard.store.chunks import chunks
from distillguard.store.schema import score_history, scores
from distillguard.store.upsert import upsert

HISTORY_STEP = 0.05
HISTORY_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One account's score as the store keeps it; ``reasons`` as ``Reason.to_json()`` gives them."""

    account_id: str
    risk: float
    verdict: str
    reasons: list[dict[str, Any]]
    calls: int
    at: datetime


@dataclass(slots=True)
class _Last:
    """The account's last history row (None: it has none) and how many rows it has, as this writer knows them."""

    risk: float | None
    verdict: str | None
    rows: int


class ScoreStore:
    """Writes scores and their history. Remembers each account's last history row (read from the store the first
    time the account comes by), so deciding whether a score moved costs no query.

    With several writers (``serve --workers N``), each counts only the history rows it wrote since it first read an
    account: an account can hold up to N x ``history_limit`` rows until a writer's count reaches the limit, and
    that writer's prune (which keeps the newest ``history_limit`` rows in the store, whoever wrote them) brings it
    back. Not thread-safe: one writer thread at a time.
    """

    def __init__(self, engine: Engine, history_step: float = HISTORY_STEP, history_limit: int = HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self._engine = engine
        self.history_step = history_step
        self.history_limit = history_limit
        self._last: dict[str, _Last] = {}

    def write(self, records: Iterable[ScoreRecord]) -> int:
        """Upsert each account's score (the newest ``at`` wins, against the store too) and append history where it
        moved, in one transaction; returns the number of history rows written."""
        newest: dict[str, ScoreRecord] = {}
        for r in records:
            seen = newest.get(r.account_id)
            if seen is None or seen.at <= r.at:
                newest[r.account_id] = r
        if not newest:
            return 0
        with self._engine.begin() as conn:
            self._remember(conn, [a for a in newest if a not in self._last])
            upsert(
                conn,
                scores,
                [
                    {
                        "account_id": r.account_id,
                        "risk": r.risk,
                        "verdict": r.verdict,
                        "reasons": r.reasons,
                        "calls": r.calls,
                        "updated_at": r.at,
                    }
                    for r in newest.values()
                ],
                ["account_id"],
                newer="updated_at",
            )
            moved = [r for r in newest.values() if self._moved(self._last[r.account_id], r)]
            if moved:
                conn.execute(
                    insert(score_history),
                    [{"account_id": r.account_id, "at": r.at, "risk": r.risk, "verdict": r.verdict} for r in moved],
                )
            over = [r.account_id for r in moved if self._last[r.account_id].rows + 1 > self.history_limit]
            for account_id in over:
                self._prune(conn, account_id)
        # Committed: only now does what this writer remembers move on.
        for r in moved:
            last = self._last[r.account_id]
            last.risk, last.verdict = r.risk, r.verdict
            last.rows = min(last.rows + 1, self.history_limit)
        return len(moved)

    def _moved(self, last: _Last, r: ScoreRecord) -> bool:
        if last.risk is None or last.verdict != r.verdict:
            return True
        # The tolerance keeps a move of exactly one step (0.35 -> 0.40 in binary floating point) a move.
        return abs(r.risk - last.risk) >= self.history_step - 1e-9

    def _remember(self, conn: Connection, accounts: list[str]) -> None:
        """Read the last history row and the row count of accounts this writer has not seen yet."""
        h = score_history.c
        for part in chunks(accounts):
            counted = conn.execute(
                select(h.account_id, func.max(h.id), func.count()).where(h.account_id.in_(part)).group_by(h.account_id)
            ).all()
            newest = {int(last_id): (account_id, int(n)) for account_id, last_id, n in counted}
            for account_id in part:
                self._last[account_id] = _Last(None, None, 0)
            if newest:
                for last_id, risk, verdict in conn.execute(select(h.id, h.risk, h.verdict).where(h.id.in_(newest))):
                    account_id, n = newest[int(last_id)]
                    self._last[account_id] = _Last(float(risk), str(verdict), n)

    def _prune(self, conn: Connection, account_id: str) -> None:
        """Keep the account's newest ``history_limit`` rows (by time), whoever wrote them."""
        h = score_history.c
        keep = (
            select(h.id).where(h.account_id == account_id).order_by(h.at.desc(), h.id.desc()).limit(self.history_limit)
        )
        conn.execute(delete(score_history).where(h.account_id == account_id, h.id.not_in(keep)))
