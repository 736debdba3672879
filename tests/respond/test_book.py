"""The case book: moves persisted with their audit entries, cases opened once, reviews applied to every member,
appeals, labels, and a hash chain that shows tampering; each test on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, update

from distillguard.config import RespondConfig
from distillguard.detect.evaluate import read_labels
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS
from distillguard.respond.book import MAX_APPEALS, CaseBook, CaseError
from distillguard.respond.responder import Responder, Verdict
from distillguard.respond.standing import Standing
from distillguard.store import open_store
from distillguard.store.schema import audit_log
from tests.conftest import StateDatabases

S = 1_000_000


def open_book(data_dir: Path, url: str) -> CaseBook:
    store = open_store(data_dir, url, secret="test-secret")
    return CaseBook(store.engine, store.secret, RespondConfig(), dict(DEFAULT_THRESHOLDS))


@pytest.fixture
def book(tmp_path: Path, store_url: str) -> CaseBook:
    return open_book(tmp_path, store_url)


def move(book: CaseBook, st: Standing, level: str, risk: float, at_s: int) -> None:
    change = book.transitions.on_verdict(st, level, risk, ["cot_elicitation"], at_s * S)  # type: ignore[arg-type]
    assert change is not None
    book.record([(st, change)])


def test_moves_are_persisted_with_audit_entries_and_one_case(book: CaseBook) -> None:
    st = Standing("harvester")
    move(book, st, "throttle", 0.6, 1)
    assert book.cases() == [] and book.standing("harvester").level == "throttle"
    move(book, st, "degrade", 0.75, 2)
    move(book, st, "block", 0.97, 3)
    [case] = book.cases()
    assert case.status == "open" and case.proposed == "block" and case.applied == "degrade"
    assert case.members == ["harvester"] and st.case_id == case.case_id
    stored = book.standing("harvester")
    assert (stored.level, stored.pending, stored.case_id) == ("degrade", "block", case.case_id)
    actions = [e.action for e in book.audit()]
    assert actions == [
        "level_escalated",
        "case_opened",
        "level_escalated",
        "case_updated",
        "level_held_for_review",
    ]
    assert book.verify() == (5, None)


def test_confirm_and_reverse_apply_to_every_member_and_leave_labels(book: CaseBook, tmp_path: Path) -> None:
    case = book.open_campaign_case("hydra-1", ["a", "b", "c"], "block", 0.99, ["shared_template"], "operator:ops")
    assert case.subject_kind == "campaign" and case.applied == "degrade"
    assert {book.standing(m).level for m in "abc"} == {"degrade"}
    confirmed = book.confirm(case.case_id, "alice", "same template and proxy pool")
    assert confirmed.status == "confirmed" and confirmed.applied == "block"
    assert all(book.standing(m).level == "block" and book.standing(m).confirmed for m in "abc")
    with pytest.raises(CaseError, match="confirmed"):
        book.escalate(case.case_id, "bob", "second look")
    reversed_ = book.reverse(case.case_id, "bob", "reseller with real customers")
    assert reversed_.status == "reversed"
    for m in "abc":
        st = book.standing(m)
        assert st.level == "allow" and not st.confirmed and st.exempt_until_us is not None
    assert [(x["account_id"], x["label"]) for x in book.labels()] == [
        *((m, "attack") for m in "abc"),
        *((m, "benign") for m in "abc"),
    ]
    with pytest.raises(CaseError, match="reason"):
        book.confirm(case.case_id, "alice", "  ")
    # The labels are what `distillguard evaluate --labels` reads; the latest decision per account wins.
    exported = tmp_path / "labels.jsonl"
    exported.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in book.labels()))
    assert {a: label.label for a, label in read_labels(exported).items()} == dict.fromkeys("abc", "benign")


def test_appeals_attach_only_to_the_account_s_own_case_and_reopen_confirmed_ones(book: CaseBook) -> None:
    case = book.open_campaign_case("hydra-2", ["a"], "block", 0.99, [], "operator:ops")
    book.confirm(case.case_id, "alice", "clear extraction")
    with pytest.raises(CaseError) as other:
        book.appeal(case.case_id, "someone-else", "let me in")
    assert other.value.status == 404
    appeal = book.appeal(case.case_id, "a", "We are an evaluation partner.", "ops@a.example")
    assert [x.appeal_id for x in book.appeals(case.case_id)] == [appeal.appeal_id]
    assert book.case(case.case_id).status == "open"
    assert [e.actor for e in book.audit(case_id=case.case_id)][-2:] == ["customer:a", "system:detector"]


def test_editing_the_trail_in_the_database_is_detected(book: CaseBook, store_url: str) -> None:
    case = book.open_campaign_case("hydra-3", ["a", "b"], "degrade", 0.8, [], "operator:ops")
    book.escalate(case.case_id, "alice", "needs a senior")
    checked, broken = book.verify()
    assert broken is None and checked == 4
    # Someone with write access to the database, not through the book.
    tamper = create_engine(store_url)
    with tamper.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(detail={"reason": "nothing to see"}))
    tamper.dispose()
    assert book.verify() == (3, 4)


def test_a_standing_changed_elsewhere_wins_over_an_older_copy(book: CaseBook) -> None:
    responder = Responder(RespondConfig(), book, watch_scorer=True)
    responder.on_verdicts([Verdict("acc", "degrade", 0.75, ["cot_elicitation"], 1 * S)])
    responder.sync(2 * S)
    case_id = responder.standings["acc"].case_id
    assert case_id is not None
    # A reviewer reverses from another process while this one still holds the old copy and moves it again.
    book.reverse(case_id, "alice", "known researcher")
    responder.on_verdicts([Verdict("acc", "block", 0.99, ["cot_elicitation"], 3 * S)])
    responder.sync(4 * S)
    stored = book.standing("acc")
    assert stored.level == "allow" and stored.exempt_until_us is not None
    assert responder.standings["acc"].level == "allow"  # adopted from the store
    responder.on_verdicts([Verdict("acc", "block", 0.99, ["cot_elicitation"], 5 * S)])
    assert responder.standings["acc"].level == "allow"  # exempt after the reversal


def test_a_member_s_own_verdict_does_not_rewrite_its_campaign_case(book: CaseBook) -> None:
    case = book.open_campaign_case("hydra-4", ["a", "b"], "degrade", 0.75, ["shared_template"], "operator:ops")
    st = book.standing("a")
    change = book.transitions.on_verdict(st, "block", 0.99, ["cot_elicitation"], 10**15)
    assert change is not None and change.needs_case
    book.record([(st, change)])
    again = book.case(case.case_id)
    assert (again.proposed, again.risk, again.reasons) == ("degrade", 0.75, ["shared_template"])
    assert book.standing("a").pending == "block"  # the member's own move stands, and is in the case's trail
    assert book.audit(case_id=case.case_id)[-1].action == "level_held_for_review"


def test_the_case_id_exists_before_the_case_is_written(book: CaseBook) -> None:
    responder = Responder(RespondConfig(), book, watch_scorer=True)
    responder.on_verdicts([Verdict("acc", "degrade", 0.8, ["cot_elicitation"], 1 * S)])
    case_id = responder.standings["acc"].case_id
    assert case_id is not None and book.cases() == []  # a refusal can quote it already
    responder.sync(2 * S)
    assert [c.case_id for c in book.cases()] == [case_id]


def test_appeals_are_capped_and_staff_are_named(book: CaseBook) -> None:
    case = book.open_campaign_case("hydra-5", ["a"], "degrade", 0.8, [], "operator:ops")
    book.appeal(case.case_id, "a", "on behalf of the customer", filed_by="carol")
    assert book.audit(case_id=case.case_id)[-1].actor == "staff:carol"
    for i in range(4):
        book.appeal(case.case_id, "a", f"appeal {i}")
    with pytest.raises(CaseError) as flood:
        book.appeal(case.case_id, "a", "one more")
    assert flood.value.status == 429 and len(book.appeals(case.case_id)) == 5


def test_campaign_members_carry_their_campaign_until_reversed(book: CaseBook) -> None:
    case = book.open_campaign_case("clu_abc", ["a", "b"], "degrade", 0.8, [], "operator:ops")
    assert book.standing("a").campaign == "clu_abc"
    responder = Responder(RespondConfig(), book, watch_scorer=False)
    responder.load()
    assert responder.campaign_of("b") == "clu_abc" and responder.campaign_of("zed") is None
    book.reverse(case.case_id, "alice", "a reseller's real customers")
    assert book.standing("a").campaign is None


def together(count: int, work: Callable[[int], object]) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads released at once; the exceptions they raised."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # collected for the test to inspect
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_concurrent_writers_keep_one_unbroken_chain(tmp_path: Path, state_databases: StateDatabases) -> None:
    url = state_databases.new()
    # One book per writer, each on its own engine: as separate gateway replicas and reviewers' CLIs would be.
    books = [open_book(tmp_path, url) for _ in range(6)]
    case = books[0].open_campaign_case("hydra-c", ["a"], "degrade", 0.8, [], "operator:ops")

    def write(i: int) -> None:
        for n in range(5):
            books[i].create_admin_token(f"reviewer-{i}-{n}", "operator:ops")
        if i % 2 == 0:
            books[i].appeal(case.case_id, "a", f"appeal {i}")

    assert together(len(books), write) == []
    entries = books[0].audit(limit=10_000)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) == 2 + 6 * 5 + 3  # the case and its member, the tokens, one appeal per even writer
    assert books[0].verify() == (len(entries), None) and books[0].head() == len(entries)


def test_checks_and_writes_of_concurrent_writers_do_not_interleave(
    tmp_path: Path, state_databases: StateDatabases
) -> None:
    url = state_databases.new()
    books = [open_book(tmp_path, url) for _ in range(MAX_APPEALS * 2)]
    case = books[0].open_campaign_case("hydra-d", ["a"], "degrade", 0.8, [], "operator:ops")
    # Twice as many appeals as allowed, at the same moment: each count must see the appeals committed before it.
    refused = together(len(books), lambda i: books[i].appeal(case.case_id, "a", f"appeal {i}"))
    assert len(books[0].appeals(case.case_id)) == MAX_APPEALS
    assert len(refused) == MAX_APPEALS and all(isinstance(e, CaseError) and e.status == 429 for e in refused)
    # Two reviewers confirming the same open case at once: one confirms, the other finds it confirmed already.
    late = together(2, lambda i: books[i].confirm(case.case_id, f"reviewer-{i}", "same template"))
    assert len(late) == 1 and isinstance(late[0], CaseError) and "is confirmed" in late[0].message
    actions = [e.action for e in books[0].audit(case_id=case.case_id)]
    assert actions.count("case_confirmed") == 1 and actions.count("level_confirmed") == 1
    assert len(list(books[0].labels())) == 1  # one decision, one label
    assert books[0].verify()[1] is None


def test_standings_of_many_accounts_come_in_the_order_asked_with_allow_for_the_unknown(book: CaseBook) -> None:
    responder = Responder(RespondConfig(), book, watch_scorer=True)
    moved = [f"acc{i}" for i in range(0, 1200, 2)]  # more than one IN chunk
    responder.on_verdicts([Verdict(a, "throttle", 0.6, ["cot_elicitation"], 1 * S) for a in moved])
    responder.sync(2 * S)
    asked = [f"acc{i}" for i in reversed(range(1200))]
    got = book.standings_of(asked)
    assert [s.account_id for s in got] == asked
    assert [s.level for s in got] == [book.standing(a).level for a in asked]
    assert {s.level for s in got} == {"throttle", "allow"}
