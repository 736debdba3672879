"""One clustering run over a data directory's event log (what the job in `serve` does each interval): the window,
campaigns saved, cases opened only where due, members whose own traffic looks legitimate left out of the case."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from distillguard.clusters.run import run_once, window_start
from distillguard.config import ClustersConfig, Settings
from distillguard.events.sqlite import EVENTS_DB
from distillguard.respond.book import CaseBook
from distillguard.store import open_store
from distillguard.store.schema import campaign_members
from distillguard.timefmt import epoch_us, utcnow
from tests.clusters.traffic import SECOND, Log, customers, enrol, hydra_traffic


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, clusters=ClustersConfig(lookback_h=1))


def test_window_is_cut_to_the_newest_events(tmp_path: Path) -> None:
    log = Log(tmp_path)
    now = epoch_us(utcnow())
    for minute in range(10):  # 300 calls a minute for the last ten minutes
        for i in range(300):
            log.call("busy", now - (10 - minute) * 60 * SECOND + i * 1000, "hello")
    log.close()
    db = tmp_path / EVENTS_DB
    assert window_start(db, now, 1.0, 1_000_000) == now - 3600 * SECOND
    cut = window_start(db, now, 1.0, 1000)
    # 1,000 events reach back into the fourth-newest minute: the window starts after it.
    assert now - 4 * 60 * SECOND < cut <= now - 3 * 60 * SECOND + 60 * SECOND


def test_a_run_saves_the_campaign_and_opens_one_case_until_it_is_due_again(settings: Settings) -> None:
    store = open_store(settings.data_dir)
    hydra = [f"trial-{i}" for i in range(5)]
    enrol(store, hydra)
    log = Log(settings.data_dir)
    start = epoch_us(utcnow()) - 20 * 60 * SECOND
    hydra_traffic(log, hydra, start, rounds=8)
    customers(log, start)
    log.close()

    first = run_once(settings, epoch_us(utcnow()))
    assert first.campaigns == 1 and len(first.cases_opened) == 1
    book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
    case = book.case(first.cases_opened[0])
    assert case.subject_kind == "campaign" and sorted(case.members) == hydra and case.applied == "degrade"
    assert book.standing("trial-0").level == "degrade" and book.standing("trial-0").campaign == case.subject_id

    # Found again while its case is open: saved again, no new case.
    again = run_once(settings, epoch_us(utcnow()))
    assert again.campaigns == 1 and again.cases_opened == []

    # A reviewer reverses it: the same campaign, with the same accounts, is not put back in front of anyone.
    book.reverse(case.case_id, "alice", "a reseller we know: their accounts are paid for")
    assert run_once(settings, epoch_us(utcnow())).cases_opened == []

    # It grows by an account the closed case did not cover: a new case, under the same campaign id.
    newcomer = "trial-9"
    enrol(store, [newcomer], minutes_ago=30)
    log = Log(settings.data_dir)
    hydra_traffic(log, [*hydra, newcomer], start + 30 * SECOND, rounds=4, seed=2)
    log.close()
    grown = run_once(settings, epoch_us(utcnow()))
    assert grown.carried == 1 and len(grown.cases_opened) == 1
    reopened = book.case(grown.cases_opened[0])
    assert reopened.subject_id == case.subject_id and newcomer in reopened.members


def hydra_with_intern(data_dir: Path, intern: bool) -> tuple[CaseBook, list[str], str | None]:
    """Five young trial accounts harvesting in sync, customers, and (with ``intern``) a 20-day-old verified account
    linked to them (the same company card, the same system prompt) that asks four ordinary questions. One clustering
    run; the case book, the hydra's accounts and the case it opened."""
    settings = Settings(data_dir=data_dir, clusters=ClustersConfig(lookback_h=1))
    store = open_store(settings.data_dir)
    hydra = [f"trial-{i}" for i in range(5)]
    enrol(store, hydra)
    log = Log(settings.data_dir)
    start = epoch_us(utcnow()) - 20 * 60 * SECOND
    hydra_traffic(log, hydra, start, rounds=12)
    customers(log, start)
    if intern:
        store.upsert_account(
            "intern",
            tier="standard",
            created_at=utcnow() - timedelta(days=20),
            verified=True,
            payment_fingerprint="card-5c1f9e",
            email_domain="acme.example",
        )
        questions = ["What time zone is Lisbon in?", "How do I cook rice?", "Recommend a sci-fi book.", "Explain VAT."]
        for r, question in enumerate(questions):
            log.call("intern", start + r * 40 * SECOND, question, "You are a careful expert tutor.")
    log.close()
    summary = run_once(settings, epoch_us(utcnow()))
    book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
    return book, hydra, summary.cases_opened[0] if summary.cases_opened else None


def test_a_member_whose_own_traffic_looks_legitimate_stays_out_of_the_case(tmp_path: Path) -> None:
    """The campaign explains; it does not convict: the intern is listed in the campaign, not in its case, and its
    standing does not move."""
    book, hydra, case_id = hydra_with_intern(tmp_path, intern=True)
    assert case_id is not None
    case = book.case(case_id)
    assert sorted(case.members) == hydra
    with book.engine.connect() as conn:
        stored = conn.execute(
            select(campaign_members.c.account_id).where(campaign_members.c.cluster_id == case.subject_id)
        )
        assert {a for (a,) in stored} == {*hydra, "intern"}
    assert book.standing("intern").level == "allow"


def test_linking_an_old_account_with_little_traffic_does_not_soften_the_campaign(tmp_path: Path) -> None:
    """A campaign's age is its traffic's: an old, verified account sending a handful of calls does not make the
    hydra look established (when it took its oldest member's age, the intern let members of this hydra go back to
    allow)."""
    alone, hydra, _ = hydra_with_intern(tmp_path / "alone", intern=False)
    linked, _, _ = hydra_with_intern(tmp_path / "linked", intern=True)
    levels = {account: alone.standing(account).level for account in hydra}
    assert set(levels.values()) == {"degrade"}
    assert {account: linked.standing(account).level for account in hydra} == levels
