"""False-positive reports made from reviewers' reversals are the same object every time they are made."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from distillguard.config import IntelConfig
from distillguard.intel.member import load_member
from distillguard.intel.reversals import EXPLANATION, Dispute, dispute_objects
from distillguard.intel.signing import verify
from tests.intel import campaign as world

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_the_same_dispute_is_the_same_signed_object_and_says_nothing_of_the_account(tmp_path: Path) -> None:
    member = load_member(IntelConfig(provider_name="Provider B", group_key=world.GROUP_KEY), tmp_path)
    disputes = [Dispute("indicator--1", "case_a", AT), Dispute("indicator--1", "case_b", AT)]
    first, again = dispute_objects(member, disputes, "amber"), dispute_objects(member, disputes, "amber")
    assert first == again  # a retry or a second replica stores and pushes nothing new
    assert first[0]["id"] != first[1]["id"]  # one report per (indicator, case)
    for obj in first:
        assert verify(obj, {member.identity_id: member.signer.public_key}) == member.identity_id
        assert (obj["type"], obj["opinion"], obj["object_refs"]) == ("opinion", "strongly-disagree", ["indicator--1"])
        assert obj["explanation"] == EXPLANATION and obj["created"].startswith("2026-11-20T12:00:00")
        assert "case_" not in str(obj)
