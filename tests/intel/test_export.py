"""Export: a campaign becomes a valid, signed STIX 2.1 bundle that carries nothing raw at the default policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.intel.export import CampaignExporter, ExportPolicy
from distillguard.intel.facts import gather
from distillguard.intel.signing import SignatureError, verify
from distillguard.intel.tlp import BY_ID, marking_id
from distillguard.intel.validation import validation_errors
from distillguard.intel.vocabulary import CAMPAIGN_EXT, DEFINITION_IDS
from tests.intel import campaign as world

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


DEFAULT_POLICY = ExportPolicy()


def export(tmp_path: Path, policy: ExportPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    member = world.member(tmp_path, "Provider A")
    facts, outsiders = gather(world.events(), [world.campaign()], world.accounts(), 2, policy.examples_allowed)
    bundle = CampaignExporter(member, policy, NOW).bundle([(world.campaign(), facts["clu_test0001"])], outsiders)
    return bundle


def by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in bundle["objects"] if o["type"] == kind]


def test_the_bundle_is_valid_stix_with_every_part_the_issue_names(tmp_path: Path) -> None:
    bundle = export(tmp_path)
    assert validation_errors(bundle) == []
    types = {o["type"] for o in bundle["objects"]}
    assert {"identity", "grouping", "indicator", "observed-data", "sighting", "marking-definition"} <= types
    assert {"extension-definition", "distillguard-keyed-identifier", "distillguard-template-signature"} <= types
    grouping = by_type(bundle, "grouping")[0]
    assert grouping["context"] == "suspicious-activity"
    facts = grouping["extensions"][CAMPAIGN_EXT.id]
    assert (
        facts["accounts"] == 8 and facts["events"] == 96 and facts["capabilities"][0] == {"name": "math", "calls": 90}
    )
    # Every indicator, sighting and observed-data is in the grouping, and every sighting points at an indicator.
    indicators = {o["id"] for o in by_type(bundle, "indicator")}
    assert indicators and indicators <= set(grouping["object_refs"])
    assert {s["sighting_of_ref"] for s in by_type(bundle, "sighting")} == indicators


def test_tlp_2_markings_are_the_oasis_objects_and_on_everything_we_create(tmp_path: Path) -> None:
    bundle = export(tmp_path, ExportPolicy(tlp="green"))
    (marking,) = by_type(bundle, "marking-definition")
    assert marking["id"] == marking_id("green") == "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
    assert marking["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"] == "green"
    for obj in bundle["objects"]:
        if "created_by_ref" in obj and obj["id"] not in DEFINITION_IDS:
            assert [BY_ID[m] for m in obj["object_marking_refs"]] == ["green"]


def test_no_raw_identifier_or_prompt_text_leaves_at_the_default_policy(tmp_path: Path) -> None:
    text = orjson.dumps(export(tmp_path)).decode()
    accounts = world.accounts()
    raw = set(world.CAMPAIGN_ACCOUNTS) | set(world.ORDINARY)
    for a in world.CAMPAIGN_ACCOUNTS:
        raw |= {accounts[a].org_id or "", accounts[a].payment_fingerprint or "", accounts[a].email_domain or ""}
    raw |= {"ho:sdkdefault"} | {f"203.0.113.{10 + j}" for j in range(8)}
    leaked = sorted(r for r in raw if r and r in text)
    assert leaked == []
    # No prompt text either: not the templates' wording, not a question, not the popular template.
    for phrase in ("step by step", "meticulous tutor", "legs of a", "Translate into French", "chain of thought"):
        assert phrase.lower() not in text.lower()
    # Addresses leave only as /24 prefixes.
    assert re.findall(r"203\.0\.113\.\d+", text) == ["203.0.113.0"] * text.count("203.0.113.")


def test_what_ordinary_users_share_with_the_campaign_is_not_exported(tmp_path: Path) -> None:
    bundle = export(tmp_path)
    member = world.member(tmp_path, "Provider A")
    from distillguard.intel.templates import TemplateSigner

    signer = TemplateSigner(member.group_key())
    popular = set(signer.sign_prompt(world.POPULAR.format(q="x")).bands)
    harvest = set(signer.sign_prompt(world.TEMPLATES[0].format(q="what is 3 times 4?")).bands)
    shared_bands = {b for o in by_type(bundle, "distillguard-template-signature") for b in o["bands"]}
    assert len(harvest & shared_bands) >= 16  # the campaign's own template is there
    assert len(popular & shared_bands) < 4  # the popular one, used by 4 ordinary users too, is not
    keyed = {(o["kind"], o["hmac"]) for o in by_type(bundle, "distillguard-keyed-identifier")}
    key = member.group_key()
    assert ("client_fingerprint", key.keyed("client_fingerprint", "ho:sdkdefault")) not in keyed
    assert ("payment_fingerprint", key.keyed("payment_fingerprint", world.CARDS[0])) in keyed


def test_raw_examples_only_when_the_policy_and_the_tlp_level_allow(tmp_path: Path) -> None:
    assert by_type(export(tmp_path, ExportPolicy(tlp="amber", raw_examples=True)), "note") == []
    notes = by_type(export(tmp_path, ExportPolicy(tlp="red", raw_examples=True)), "note")
    assert notes and "step by step" in notes[0]["content"]


def test_every_object_we_create_is_signed_and_tampering_shows(tmp_path: Path) -> None:
    bundle = export(tmp_path)
    member = world.member(tmp_path, "Provider A")
    keys = {member.identity_id: member.signer.public_key}
    signed = [o for o in bundle["objects"] if o["id"] not in DEFINITION_IDS and o["type"] != "marking-definition"]
    assert all(verify(o, keys) == member.identity_id for o in signed)
    indicator = dict(by_type(bundle, "indicator")[0])
    indicator["pattern"] = indicator["pattern"].replace("'", "'0", 1)
    with pytest.raises(SignatureError, match="altered or forged"):
        verify(indicator, keys)


def test_exporting_again_gives_new_versions_of_the_same_objects(tmp_path: Path) -> None:
    first = {o["id"] for o in by_type(export(tmp_path), "indicator")}
    member = world.member(tmp_path, "Provider A")
    facts, outsiders = gather(world.events(), [world.campaign()], world.accounts(), 2, False)
    later = CampaignExporter(member, ExportPolicy(), datetime(2026, 11, 26, tzinfo=UTC))
    again = [o for o in later.bundle([(world.campaign(), facts["clu_test0001"])], outsiders)["objects"]]
    assert {o["id"] for o in again if o["type"] == "indicator"} == first
    assert all(o["modified"].startswith("2026-11-26") for o in again if o["type"] == "indicator")
