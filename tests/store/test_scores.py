"""Scores in the state store: the newest per account, a history of the moves that matter, bounded per account
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from distillguard.store import open_store
from distillguard.store.schema import score_history, scores
from distillguard.store.scores import ScoreRecord, ScoreStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REASONS = [{"signal": "cot_elicitation", "value": 0.8, "detail": "asks for the reasoning", "weight": 1.4}]


def rec(account: str, risk: float, verdict: str, seconds: float, calls: int = 8) -> ScoreRecord:
    return ScoreRecord(account, risk, verdict, REASONS, calls, T0 + timedelta(seconds=seconds))


def engine_for(tmp_path: Path, store_url: str) -> Engine:
    return open_store(tmp_path, store_url).engine


def history(engine: Engine, account: str) -> list[tuple[float, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(score_history.c.risk, score_history.c.verdict)
            .where(score_history.c.account_id == account)
            .order_by(score_history.c.at)
        )
        return [(round(r, 3), v) for r, v in rows]


def score_of(engine: Engine, account: str) -> tuple[float, str, int, list[dict[str, object]]]:
    with engine.connect() as conn:
        row = conn.execute(
            select(scores.c.risk, scores.c.verdict, scores.c.calls, scores.c.reasons).where(
                scores.c.account_id == account
            )
        ).one()
    return row[0], row[1], row[2], row[3]


def test_newest_score_wins_and_history_keeps_the_moves_that_matter(tmp_path: Path, store_url: str) -> None:
    engine = engine_for(tmp_path, store_url)
    store = ScoreStore(engine)
    assert store.write([rec("a", 0.10, "allow", 0), rec("b", 0.55, "throttle", 0)]) == 2
    # Drifting by less than 0.05 from the last row written: no row, however many times; the score still moves.
    for i, risk in enumerate([0.12, 0.13, 0.14], 1):
        assert store.write([rec("a", risk, "allow", i)]) == 0
    assert score_of(engine, "a")[0] == 0.14
    # 0.15 is 0.05 from the last row written (0.10), not from the last score (0.14): a row.
    assert store.write([rec("a", 0.15, "allow", 4)]) == 1
    # A verdict change is a row however small the move.
    assert store.write([rec("a", 0.16, "watch", 5)]) == 1
    assert history(engine, "a") == [(0.10, "allow"), (0.15, "allow"), (0.16, "watch")]
    # An older score (a batch analysis of an old log) does not replace a newer one.
    store.write([rec("b", 0.90, "challenge", -60)])
    assert score_of(engine, "b") == (0.55, "throttle", 8, REASONS)
    # Several scores of one account in one write: the newest is the one kept.
    store.write([rec("c", 0.7, "degrade", 9, calls=16), rec("c", 0.2, "allow", 3, calls=8)])
    assert score_of(engine, "c")[:3] == (0.7, "degrade", 16) and history(engine, "c") == [(0.7, "degrade")]


def test_a_new_writer_continues_from_the_stored_history(tmp_path: Path, store_url: str) -> None:
    """A restarted gateway (or another worker) reads each account's last row before deciding what moved."""
    engine = engine_for(tmp_path, store_url)
    ScoreStore(engine).write([rec("a", 0.40, "watch", 0)])
    again = ScoreStore(engine)
    assert again.write([rec("a", 0.42, "watch", 1)]) == 0
    assert again.write([rec("a", 0.46, "watch", 2)]) == 1
    assert history(engine, "a") == [(0.40, "watch"), (0.46, "watch")]


def test_history_is_bounded_per_account_keeping_the_newest(tmp_path: Path, store_url: str) -> None:
    engine = engine_for(tmp_path, store_url)
    store = ScoreStore(engine, history_limit=5)
    for i in range(12):
        store.write([rec("a", 0.1 * (i % 2) + 0.3, "watch", i), rec("quiet", 0.0, "allow", i)])
    # Every alternation moves by 0.1 (12 rows); the newest five are kept.
    assert history(engine, "a") == [(0.4, "watch"), (0.3, "watch"), (0.4, "watch"), (0.3, "watch"), (0.4, "watch")]
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(score_history.c.at)).where(score_history.c.account_id == "a")).one()[0]
        counts: dict[str, int] = dict(
            conn.execute(select(score_history.c.account_id, func.count()).group_by("account_id")).all()
        )
    assert newest.replace(tzinfo=UTC) == T0 + timedelta(seconds=11)
    assert counts == {"a": 5, "quiet": 1}
    # A second writer prunes what it finds over the bound too, whoever wrote it.
    other = ScoreStore(engine, history_limit=3)
    other.write([rec("a", 0.9, "block", 20)])
    assert history(engine, "a") == [(0.3, "watch"), (0.4, "watch"), (0.9, "block")]
