"""The rest of the read model on SQLite and PostgreSQL: time buckets of the audit trail, JSON paths into campaigns,
the text of scores' reasons, an account's and a case's pages."""

from __future__ import annotations

from distillguard.console.read.account import read_account
from distillguard.console.read.campaigns import list_campaigns, read_campaign
from distillguard.console.read.intel import read_intel
from distillguard.console.read.overview import ActionTally, read_overview
from distillguard.console.read.review import read_case, read_queue
from tests.console.world import CLUSTER, PARTNER, World


def test_overview_counts_and_buckets(any_store: World) -> None:
    ctx = any_store.ctx
    view = read_overview(ctx.engine, ctx.events, ctx.actions, "hour")
    assert view.totals.calls == 43 and view.totals.refused == 0 and view.totals.errors == 0
    assert view.verdicts == {"allow": 2, "block": 1, "watch": 1} and view.flagged == 1
    assert view.standings == {"degrade": 1} and view.pending == 1
    assert view.open_cases == 1 and (view.campaigns, view.flagged_campaigns) == (1, 1)
    # Audit actions in one-minute buckets (the database's own time arithmetic): the case and the level change.
    actions = {action: n for _, action, n in view.actions}
    assert actions == {"case_opened": 1, "level_escalated": 1}
    assert all(start % 60_000_000 == 0 and start >= view.since_us - 60_000_000 for start, _, _ in view.actions)


def test_campaigns(any_store: World) -> None:
    ctx = any_store.ctx
    (listed,) = list_campaigns(ctx.engine, None, 0, 10)
    assert (listed.cluster_id, listed.verdict, listed.size, listed.events) == (CLUSTER, "degrade", 3, 33)
    assert listed.top_capabilities == ["math", "general"] and listed.evidence_kinds == ["shared_template"]
    assert list_campaigns(ctx.engine, "block", 0, 10) == []
    detail = read_campaign(ctx.engine, ctx.events, ctx.book, CLUSTER)
    assert detail is not None
    assert [m.account_id for m in detail.members] == ["harvester", "eval-lab", "quiet"]  # firmest link first
    assert detail.members[0].traffic.calls == 30 and detail.members[0].level == "degrade"
    assert detail.members[2].traffic.calls == 0 and detail.members[2].verdict is None
    assert {(lk["a"], lk["b"]) for lk in detail.links} == {("harvester", "eval-lab"), ("harvester", "quiet")}
    assert read_campaign(ctx.engine, ctx.events, ctx.book, "clu_none") is None


def test_intel(any_store: World) -> None:
    ctx = any_store.ctx
    view = read_intel(ctx.engine, ctx.settings.intel, None, 10)
    (sender,) = view.senders
    assert (sender.name, sender.types, sender.own) == ("Provider A", {"indicator": 1}, False)
    (indicator,) = view.indicators
    assert (indicator.sender, indicator.kind, indicator.campaign) == ("Provider A", "payment_fingerprint", "clu_theirs")
    assert indicator.signer == PARTNER
    assert [(m.account_id, m.evidence) for m in view.matched] == [("harvester", 0.6)]


def test_account(any_store: World) -> None:
    ctx = any_store.ctx
    d = read_account(ctx.store, ctx.events, ctx.book, ctx.settings, "harvester")
    assert d.exists and d.account is not None and d.account.tier == "free"
    assert d.score is not None and d.score.verdict == "block"
    assert [(p["risk"], p["verdict"]) for p in d.history] == [(0.35, "watch"), (0.97, "block")]
    assert [e.action for e in d.level_changes] == ["level_escalated"]
    assert [c.case_id for c in d.cases] == [any_store.case_id]
    assert [m.cluster_id for m in d.campaigns] == [CLUSTER]
    assert [c["check_id"] for c in d.checks] == [any_store.check_id]
    assert len(d.exchanges) == ctx.settings.console.sample_exchanges
    assert d.exchanges[0].messages[0].text.startswith("Think step by step") and d.exchanges[0].answer_kept == "full"
    cot = next(e for e in d.evidence if e.signal == "cot_elicitation")
    assert (cot.matched, cot.of, len(cot.examples)) == (30, 30, 5)
    assert {(lim.scope, lim.kind, lim.spec) for lim in d.limits} >= {("account", "requests", "20/minute")}
    # The throttle's limits apply on top at degrade (which throttles, respond.actions).
    assert ("throttle", "requests", "10/minute") in {(lim.scope, lim.kind, lim.spec) for lim in d.limits}
    assert not read_account(ctx.store, ctx.events, ctx.book, ctx.settings, "nobody").exists


def test_review(any_store: World) -> None:
    ctx = any_store.ctx
    queue = read_queue(ctx.book, "waiting", 0, 10)
    assert [c.case_id for c in queue.cases] == [any_store.case_id] and not queue.has_next
    view = read_case(ctx.book, ctx.engine, ctx.events, 100, any_store.case_id)
    assert [s.account_id for s in view.standings] == ["harvester"]
    assert {e.action for e in view.audit} == {"case_opened", "level_escalated"}
    assert [e.signal for e in view.evidence] == ["cot_elicitation", "partner_intel"]
    assert view.evidence[0].matched == 30 and view.evidence_calls == 30


def test_the_actions_tally_counts_what_is_appended_after_it_settled_older_buckets(any_store: World) -> None:
    ctx = any_store.ctx
    before = {a: n for _, a, n in read_overview(ctx.engine, ctx.events, ctx.actions, "day").actions}
    ctx.book.escalate(any_store.case_id, "bob", "needs a second look")
    after = {a: n for _, a, n in read_overview(ctx.engine, ctx.events, ctx.actions, "day").actions}
    assert after == {**before, "case_escalated": 1}
    # A tally that remembers nothing agrees.
    fresh = {a: n for _, a, n in read_overview(ctx.engine, ctx.events, ActionTally(), "day").actions}
    assert fresh == after
