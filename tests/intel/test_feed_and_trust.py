"""Import and trust: verified partner intel raises risk only with corroboration; forged intel never lands."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from distillguard.detect.reasons import Reason
from distillguard.detect.signals.template import template_id
from distillguard.detect.signals.text import window
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, verdict_for
from distillguard.intel.export import CampaignExporter, ExportPolicy
from distillguard.intel.facts import gather
from distillguard.intel.feed import Feed, build_feed
from distillguard.intel.feedback import false_positive, sighting
from distillguard.intel.matching import Matcher
from distillguard.intel.member import Member
from distillguard.intel.privacy import GroupKey
from distillguard.intel.store import IntelStore
from distillguard.intel.trust import Partner, PartnerEvidence, Trust
from distillguard.store.models import Account
from distillguard.store.schema import metadata
from tests.intel import campaign as world

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FEATURES: list[Reason] = []
OWN_RULE = [Reason("cot_elicitation", 0.4, "40% of requests ask for step-by-step reasoning traces", 1.8)]
MODEL_ONLY = [Reason("learned_model", 0.4, "the learned model puts the risk at 0.40", 0.0)]


def bundle_of(member: Member) -> dict[str, Any]:
    facts, outsiders = gather(world.events(), [world.campaign()], world.accounts(), 2, False)
    return CampaignExporter(member, ExportPolicy(), NOW).bundle([(world.campaign(), facts["clu_test0001"])], outsiders)


@pytest.fixture
def parties(tmp_path: Path) -> dict[str, Member]:
    return {name: world.member(tmp_path, name) for name in ("Provider A", "Provider B", "Provider C")}


def keys(*members: Member) -> dict[str, Any]:
    return {m.identity_id: m.signer.public_key for m in members}


def store() -> IntelStore:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    return IntelStore(engine)


def feed_of(s: IntelStore, key: GroupKey) -> Feed:
    return build_feed(s.objects(), key.key_id, "2026-11-25T12:00:00Z")


def evidence(b: Member, feed: Feed, weights: dict[Member, float]) -> PartnerEvidence:
    trust = Trust({m.identity_id: Partner(m.name, w) for m, w in weights.items()}, b.identity_id)
    return PartnerEvidence(trust, feed, DEFAULT_THRESHOLDS)


def newcomer(account_id: str, card: str = world.CARDS[0]) -> Account:
    """An account at B that A never saw, paying with a card of A's campaign."""
    return Account(account_id, payment_fingerprint=card, email_domain="other.example")


def test_a_partner_campaign_matches_new_accounts_by_card_and_template(parties: dict[str, Member]) -> None:
    a, b = parties["Provider A"], parties["Provider B"]
    s = store()
    result = s.ingest(bundle_of(a)["objects"], keys(a, b))
    assert result.rejected == [] and result.accepted > 20
    feed = feed_of(s, b.group_key())
    matcher = Matcher(feed, b.group_key())
    kinds = {m.kind for m in matcher.account(newcomer("acct_new_1"))}
    assert kinds == {"payment_fingerprint"}
    prompt = world.TEMPLATES[1].format(q="how many wheels do 7 bicycles have?")
    call = matcher.call(template_id(window(prompt)), lambda: prompt, "203.0.113.200", (None,))
    assert {m.kind for m in call} == {"template", "ip_prefix"}
    assert matcher.call("t-2", lambda: "what's a good name for a cat", "192.0.2.1", (None,)) == []
    # Indicators keyed under another group key are not usable (and say why).
    other = build_feed(s.objects(), GroupKey(b"z" * 32).key_id, "2026-11-25T12:00:00Z")
    assert [i.kind for i in other.indicators.values()] == ["ip_prefix"]
    assert any("not ours" in reason for _, reason in other.skipped)


def test_one_partner_alone_can_put_an_account_on_watch_but_not_enforce(parties: dict[str, Member]) -> None:
    a, b = parties["Provider A"], parties["Provider B"]
    s = store()
    s.ingest(bundle_of(a)["objects"], keys(a, b))
    feed = feed_of(s, b.group_key())
    ev = evidence(b, feed, {a: 1.0})
    matcher = Matcher(feed, b.group_key())
    ev.record("customer", matcher.account(newcomer("customer")))
    risk, reason = ev.adjust("customer", 0.02, FEATURES)
    assert verdict_for(risk) == "watch"
    assert reason is not None and "not corroborated" in reason.detail and "Provider A" in reason.detail
    # The same card on an account whose calls on the partner's templates elicit reasoning traces (by our own
    # signals) is corroborated: flagged.
    harvest = world.TEMPLATES[0].format(q="what is 6 times 7?")
    ev.record("harvester", matcher.account(newcomer("harvester")))
    ev.record("harvester", matcher.call(template_id(window(harvest)), lambda: harvest, None, (None,)), shaped=True)
    risk, reason = ev.adjust("harvester", 0.02, FEATURES)
    assert verdict_for(risk) in {"throttle", "degrade"}
    assert reason is not None and "corroborated by our own signals" in reason.detail
    # Intel never goes beyond degrade by itself: challenge and block need our own evidence or a reviewer.
    assert risk < DEFAULT_THRESHOLDS["challenge"]
    # Our own rules at watch corroborate too, but then the lift stops at throttle; the learned model alone does not.
    risk, reason = ev.adjust("customer", 0.35, OWN_RULE)
    assert verdict_for(risk) == "throttle" and reason is not None and "our own detection" in reason.detail
    risk, reason = ev.adjust("customer", 0.35, MODEL_ONLY)
    assert verdict_for(risk) == "watch" and reason is not None and "not corroborated" in reason.detail
    # An account that matched nothing is untouched.
    assert ev.adjust("bystander", 0.02, FEATURES) == (0.02, None)


def test_template_calls_that_are_not_extraction_shaped_do_not_corroborate(parties: dict[str, Member]) -> None:
    a, b = parties["Provider A"], parties["Provider B"]
    s = store()
    s.ingest(bundle_of(a)["objects"], keys(a, b))
    feed = feed_of(s, b.group_key())
    ev = evidence(b, feed, {a: 1.0})
    matcher = Matcher(feed, b.group_key())
    prompt = world.TEMPLATES[1].format(q="how many wheels do 3 cars have?")
    for _ in range(3):
        ev.record("app", matcher.call(template_id(window(prompt)), lambda: prompt, None, (None,)), shaped=False)
    risk, reason = ev.adjust("app", 0.02, FEATURES)
    assert verdict_for(risk) == "watch" and reason is not None and "not corroborated" in reason.detail


def test_two_independent_partners_corroborate_each_other(parties: dict[str, Member]) -> None:
    a, b, c = parties["Provider A"], parties["Provider B"], parties["Provider C"]
    s = store()
    s.ingest(bundle_of(a)["objects"], keys(a, b, c))
    feed = feed_of(s, b.group_key())
    card = next(i for i in feed.indicators.values() if i.kind == "payment_fingerprint")
    s.ingest([sighting(c, card.id, 40, NOW, NOW, "amber")], keys(a, b, c))
    feed = feed_of(s, b.group_key())
    assert feed.reporters(card.id) == {a.identity_id, c.identity_id}
    ev = evidence(b, feed, {a: 0.6, c: 0.6})
    ev.record("acct", Matcher(feed, b.group_key()).account(newcomer("acct")))
    risk, reason = ev.adjust("acct", 0.02, FEATURES)
    assert verdict_for(risk) in {"throttle", "degrade"}
    assert reason is not None and "2 partners independently" in reason.detail


def test_false_positive_reports_damp_or_remove_an_indicator(parties: dict[str, Member]) -> None:
    a, b, c = parties["Provider A"], parties["Provider B"], parties["Provider C"]
    s = store()
    s.ingest(bundle_of(a)["objects"], keys(a, b, c))
    feed = feed_of(s, b.group_key())
    card = next(i for i in feed.indicators.values() if i.kind == "payment_fingerprint")
    matcher = Matcher(feed, b.group_key())
    matches = matcher.account(newcomer("acct"))
    harvest = world.TEMPLATES[0].format(q="2 + 2?")
    calls = matcher.call(template_id(window(harvest)), lambda: harvest, None, (None,))

    def lifted() -> float:
        ev = evidence(b, feed_of(s, b.group_key()), {a: 0.6, c: 0.6})
        ev.record("acct", matches)
        ev.record("acct", calls, shaped=True)
        return ev.adjust("acct", 0.02, FEATURES)[0]

    before = lifted()
    s.ingest([false_positive(c, card.id, "a customer of ours", NOW, "amber")], keys(a, b, c))
    damped = lifted()
    assert 0.02 < damped < before
    # Our own dispute removes an indicator for us at once: disputing everything this account matched undoes it all.
    s.ingest([false_positive(b, card.id, "our support bot", NOW, "amber")], keys(a, b, c))
    assert lifted() < damped
    s.ingest([false_positive(b, m.indicator_id, "our support bot", NOW, "amber") for m in calls], keys(a, b, c))
    assert lifted() == 0.02


def test_forged_tampered_and_unknown_objects_are_rejected(parties: dict[str, Member]) -> None:
    a, b, c = parties["Provider A"], parties["Provider B"], parties["Provider C"]
    objects = bundle_of(a)["objects"]
    indicator = next(o for o in objects if o["type"] == "indicator")
    tampered = copy.deepcopy(indicator)
    tampered["pattern"] = tampered["pattern"].replace("IN ('", "IN ('00", 1)
    # C re-signs A's indicator in its own name without changing created_by_ref: the creator must sign.
    impersonated = c.signer.sign(indicator)
    s = store()
    result = s.ingest([tampered, impersonated], keys(a, b, c))
    assert result.accepted == 0 and len(result.rejected) == 2
    assert "altered or forged" in result.rejected[0][1] and "signed by" in result.rejected[1][1]
    # A member nobody configured is not trusted at all.
    assert store().ingest(objects, keys(b)).accepted == 0
    # Pulling the same objects twice stores them once.
    s2 = store()
    assert s2.ingest(objects, keys(a)).accepted > 0
    again = s2.ingest(objects, keys(a))
    assert again.accepted == 0 and again.duplicates > 0


def test_templates_match_exactly_at_once_and_as_near_duplicates_from_their_second_sighting(
    parties: dict[str, Member],
) -> None:
    a, b = parties["Provider A"], parties["Provider B"]
    s = store()
    s.ingest(bundle_of(a)["objects"], keys(a, b))
    feed = feed_of(s, b.group_key())
    assert all(i.exact for i in feed.indicators.values() if i.kind == "template")
    matcher = Matcher(feed, b.group_key())
    same = world.TEMPLATES[0].format(q="what is 5 times 5?")
    (first,) = matcher.call(template_id(window(same)), lambda: same, None, (None,))
    assert first.kind == "template" and "identical" in first.detail and matcher.signatures_computed == 0
    # A near-duplicate (a word of the instruction changed) has another template id: no match on first sight, a
    # band match from the second; an ordinary prompt sent once is never signed.
    near = world.TEMPLATES[0].replace("all of your", "all your").format(q="what is 6 times 6?")
    assert matcher.call(template_id(window(near)), lambda: near, None, (None,)) == []
    again = matcher.call(template_id(window(near)), lambda: near, None, (None,))
    assert [m.kind for m in again] == ["template"] and "bands shared" in again[0].detail
    assert matcher.call("t-unique", lambda: "what's a good name for a cat", None, (None,)) == []
    assert matcher.signatures_computed == 1
