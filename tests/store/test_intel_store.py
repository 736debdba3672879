"""Received intel on the state store, on SQLite and PostgreSQL: a duplicate version is counted inside the same
transaction as the new ones (a savepoint), forged objects never land, cursors move forward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from distillguard.intel.signing import Signer
from distillguard.intel.store import IntelStore
from distillguard.store import open_store

IDENTITY = "identity--7d7e1c43-3e1c-4bd7-9d1c-2f6a1a8c9b10"


def indicator(n: int, modified: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-00000000000{n}",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": modified,
        "created_by_ref": IDENTITY,
        "pattern": f"[x-dg-account:payment_fingerprint = 'card-{n}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-01T00:00:00Z",
    }


def test_ingest_counts_duplicates_and_keeps_every_new_version(tmp_path: Path, store_url: str) -> None:
    signer = Signer(IDENTITY, Ed25519PrivateKey.generate())
    keys = {IDENTITY: signer.public_key}
    intel = IntelStore(open_store(tmp_path, store_url).engine)
    first = [
        signer.sign(indicator(1, "2026-11-01T00:00:00.000Z")),
        signer.sign(indicator(2, "2026-11-01T00:00:00.000Z")),
    ]
    assert intel.ingest(first, keys).accepted == 2
    forged = signer.sign(indicator(3, "2026-11-01T00:00:00.000Z"))
    forged["pattern"] = "[x-dg-account:payment_fingerprint = 'someone-innocent']"
    newer = signer.sign(indicator(1, "2026-11-02T00:00:00.000Z"))
    # Duplicates first and between: each failed insert is rolled back to its savepoint, not the whole pull.
    result = intel.ingest([first[0], newer, first[1], forged], keys)
    assert (result.accepted, result.duplicates, [i for i, _ in result.rejected]) == (1, 2, [forged["id"]])
    stored = sorted((body["id"][-1], body["modified"]) for _, body in intel.objects(["indicator"]))
    assert stored == [
        ("1", "2026-11-01T00:00:00.000Z"),
        ("1", "2026-11-02T00:00:00.000Z"),
        ("2", "2026-11-01T00:00:00.000Z"),
    ]
    assert {signer_id for signer_id, _ in intel.objects()} == {IDENTITY}


def test_cursors_are_per_source_and_move(tmp_path: Path, store_url: str) -> None:
    intel = IntelStore(open_store(tmp_path, store_url).engine)
    assert intel.cursor("https://hub.example/c1") is None
    intel.set_cursor("https://hub.example/c1", "2026-11-01T00:00:00.000Z")
    intel.set_cursor("https://hub.example/c1", "2026-11-02T00:00:00.000Z")
    intel.set_cursor("https://hub.example/c2", "2026-10-01T00:00:00.000Z")
    assert intel.cursor("https://hub.example/c1") == "2026-11-02T00:00:00.000Z"
    assert intel.cursor("https://hub.example/c2") == "2026-10-01T00:00:00.000Z"
