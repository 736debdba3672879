"""The console benchmark's data generator (bench/console_data.py) at a tiny scale, so the benchmark does not rot: what
it writes must be what the real code reads, and agree with itself."""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from distillguard.config import DetectConfig, RespondConfig, load_settings
from distillguard.events.schema import request_object
from distillguard.events.signals import SIGNALS_VERSION
from distillguard.events.sqlite import iter_events
from distillguard.respond.book import CaseBook
from distillguard.store import open_store
from distillguard.timefmt import epoch_us

BENCH = Path(__file__).resolve().parents[2] / "bench"
ACCOUNTS = 200
EVENTS = 5_000


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCH))
        yield importlib.import_module("console_data")


@pytest.fixture(scope="module")
def built(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("console-bench") / "data"
    manifest = bench.build(out, bench.Scale(accounts=ACCOUNTS, events=EVENTS, seed=3))
    return out, manifest


def _rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(conn.execute(query).fetchall())
    finally:
        conn.close()


def test_the_scale_asked_for(built: tuple[Path, dict[str, Any]]) -> None:
    data, manifest = built
    assert _rows(data / "state.db", "SELECT count(*) FROM accounts") == [(ACCOUNTS,)]
    assert _rows(data / "events.db", "SELECT count(*) FROM events") == [(EVENTS,)]
    assert manifest["events"]["rows"] == EVENTS
    # The pages the benchmark opens exist.
    picks = manifest["picks"]
    for key in ("heavy_account", "typical_account"):
        account = picks[key]["account_id"]
        assert _rows(data / "state.db", f"SELECT count(*) FROM accounts WHERE account_id = '{account}'") == [(1,)]  # noqa: S608
    cluster = picks["big_campaign"]["cluster_id"]
    assert _rows(data / "state.db", f"SELECT size FROM campaigns WHERE cluster_id = '{cluster}'")[0][0] >= 5  # noqa: S608


def test_rollups_equal_a_group_by_over_the_events(built: tuple[Path, dict[str, Any]]) -> None:
    db = built[0] / "events.db"
    minutes = """SELECT ts_us - ts_us % 60000000, count(*), sum(status >= 500), sum(status IN (403, 429)),
        coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) FROM events GROUP BY 1"""
    accounts = """SELECT account_id, count(*), sum(status >= 500), sum(status IN (403, 429)),
        coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), min(ts_us), max(ts_us)
        FROM events GROUP BY 1"""
    assert _rows(db, "SELECT * FROM traffic_minutes") == _rows(db, minutes)
    assert _rows(db, "SELECT * FROM account_traffic") == _rows(db, accounts)
    indexes = {name for (name,) in _rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_events_id", "ix_events_ts", "ix_events_account_ts"} <= indexes


def test_events_read_back_through_the_event_log_with_their_signals(built: tuple[Path, dict[str, Any]]) -> None:
    data, manifest = built
    events = list(iter_events(data / "events.db"))
    assert len(events) == EVENTS
    assert all(e.signals is not None for e in events)
    assert len({e.event_id for e in events}) == EVENTS
    start, end = manifest["start"], manifest["end"]
    assert start <= events[0].to_json()["ts"] and events[-1].to_json()["ts"] < end
    served = [e for e in events if e.status == 200]
    assert served and all(e.prompt_tokens for e in served)
    # Text is kept as the gateway keeps it: truncated, with the whole answer's hash (tool calls carry no text).
    assert all(e.text_sha256 and len(e.text) <= 100 for e in served if e.text is not None)
    assert all(e.prompt_tokens is None and e.text is None for e in events if e.status in (403, 429))
    assert {request_object(e.request_raw)["model"] for e in events} <= {"frontier-1", "frontier-mini", "frontier-2"}
    assert _rows(data / "events.db", "SELECT DISTINCT signals_version FROM events")[0][0] == SIGNALS_VERSION


def test_every_account_with_traffic_has_a_score_that_counts_its_calls(built: tuple[Path, dict[str, Any]]) -> None:
    data = built[0]
    traffic = dict(_rows(data / "events.db", "SELECT account_id, calls FROM account_traffic"))
    scored = dict(_rows(data / "state.db", "SELECT account_id, calls FROM scores"))
    assert scored == traffic
    reasons = _rows(data / "state.db", "SELECT reasons FROM scores")
    assert all('"signal"' in r and '"weight"' in r for (r,) in reasons)
    history = _rows(data / "state.db", "SELECT DISTINCT account_id FROM score_history")
    assert {a for (a,) in history} == set(traffic)


def test_campaign_members_and_links_name_real_accounts(built: tuple[Path, dict[str, Any]]) -> None:
    state = built[0] / "state.db"
    accounts = {a for (a,) in _rows(state, "SELECT account_id FROM accounts")}
    members = _rows(state, "SELECT cluster_id, account_id FROM campaign_members")
    assert members and {a for _, a in members} <= accounts
    sizes = dict(_rows(state, "SELECT cluster_id, size FROM campaigns"))
    for cluster, size in sizes.items():
        assert sum(1 for c, _ in members if c == cluster) == size
    settings = load_settings(None, data_dir=built[0])
    store = open_store(built[0], settings.store_url)
    try:
        with store.engine.connect() as conn:
            bodies = [row[0] for row in conn.exec_driver_sql("SELECT body FROM campaigns")]
    finally:
        store.close()
    for body in map(orjson.loads, bodies):
        names = {m["account_id"] for m in body["members"]}
        assert body["links"] and all(link["a"] in names and link["b"] in names for link in body["links"])
        assert all(
            {"kind", "category", "score", "detail"} == set(e) for link in body["links"] for e in link["evidence"]
        )


def test_the_case_book_week_is_a_valid_audit_chain_in_time_order(built: tuple[Path, dict[str, Any]]) -> None:
    data, manifest = built
    store = open_store(data)
    try:
        book = CaseBook(store.engine, store.secret, RespondConfig(), DetectConfig().thresholds)
        checked, broken = book.verify()
        entries = book.audit(limit=1_000_000)
    finally:
        store.close()
    assert broken is None and checked == len(entries) > 0
    times = [e.at for e in entries]
    assert times == sorted(times)
    assert manifest["start"] <= entries[0].to_json()["at"] and entries[-1].to_json()["at"] < manifest["end"]
    cases = _rows(data / "state.db", "SELECT status FROM cases")
    assert cases, "campaign cases are opened"
    # Every standing was written by an audit entry.
    seqs = {s for (s,) in _rows(data / "state.db", "SELECT seq FROM standings")}
    assert seqs <= {e.seq for e in entries}


def test_calls_are_refused_while_the_account_is_blocked(built: tuple[Path, dict[str, Any]]) -> None:
    state, events = built[0] / "state.db", built[0] / "events.db"
    moves = _rows(
        state,
        "SELECT account_id, seq, at, json_extract(detail, '$.to') FROM audit_log "
        "WHERE account_id IS NOT NULL AND action LIKE 'level_%'",
    )
    blocked: list[tuple[str, int, int]] = []
    by_account: dict[str, list[tuple[int, str]]] = {}
    for account, _, at, level in moves:
        by_account.setdefault(account, []).append((epoch_us(datetime.fromisoformat(at).replace(tzinfo=UTC)), level))
    for account, levels in by_account.items():
        for (since, level), (until, _) in zip(levels, [*levels[1:], (1 << 62, "")], strict=True):
            if level == "block":
                blocked.append((account, since, until))
    assert blocked, "reviewers confirm some campaigns at block"
    for account, since, until in blocked:
        statuses = _rows(
            events,
            f"SELECT DISTINCT status FROM events WHERE account_id = '{account}' "  # noqa: S608
            f"AND ts_us >= {since} AND ts_us < {until}",
        )
        assert statuses in ([], [(403,)])


def test_intel_and_checks_come_from_the_real_code(built: tuple[Path, dict[str, Any]]) -> None:
    data = built[0]
    settings = load_settings(data / "distillguard.toml")
    partners = {p.identity for p in settings.intel.partners}
    signers = {s for (s,) in _rows(data / "state.db", "SELECT DISTINCT signer FROM intel_objects")}
    assert signers and signers <= partners
    checks = _rows(data / "state.db", "SELECT kind, p_value FROM checks")
    assert checks and all(0.0 <= p <= 1.0 for _, p in checks)
