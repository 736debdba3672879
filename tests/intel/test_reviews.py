"""Reports made from reviewers' decisions are the same signed object every time, and say nothing of the account."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from distillguard.config import IntelConfig
from distillguard.intel.member import load_member
from distillguard.intel.reviews import EXPLANATION, Feedback, feedback_objects
from distillguard.intel.signing import verify
from tests.intel import campaign as world

OPENED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DECIDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_the_same_decision_makes_the_same_signed_report_and_says_nothing_of_the_account(tmp_path: Path) -> None:
    member = load_member(IntelConfig(provider_name="Provider B", group_key=world.GROUP_KEY), tmp_path)
    feedback = [
        Feedback("dispute", "indicator--1", "case_a", OPENED, DECIDED, 1),
        Feedback("dispute", "indicator--1", "case_b", OPENED, DECIDED, 1),
        Feedback("sighting", "indicator--1", "case_c", OPENED, DECIDED, 3),
    ]
    first, again = feedback_objects(member, feedback, "amber"), feedback_objects(member, feedback, "amber")
    assert first == again  # a retry or a second replica stores and pushes nothing new
    assert len({o["id"] for o in first}) == 3  # one report per (indicator, case, kind)
    for obj in first:
        assert verify(obj, {member.identity_id: member.signer.public_key}) == member.identity_id
        assert "case_" not in str(obj)
    dispute, _, sighted = first
    assert (dispute["type"], dispute["opinion"], dispute["object_refs"]) == (
        "opinion",
        "strongly-disagree",
        ["indicator--1"],
    )
    assert dispute["explanation"] == EXPLANATION and dispute["created"].startswith("2026-11-20T12:00:00")
    assert (sighted["type"], sighted["sighting_of_ref"], sighted["count"]) == ("sighting", "indicator--1", 3)
    assert sighted["first_seen"].startswith("2026-11-20T09:00") and sighted["last_seen"].startswith("2026-11-20T12:00")
