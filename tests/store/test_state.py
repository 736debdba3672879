"""State store: accounts, keys as keyed hashes, revocation, the accounts file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from distillguard.store import keys as keyfmt
from distillguard.store import open_store
from distillguard.store.accounts_file import read_accounts
from distillguard.store.state import NotFoundError


def test_key_roundtrip_and_revocation(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_account("acme", org_id="acme-inc", tier="free", country="DE")
    key, plaintext = store.create_key("acme", "ci")
    assert keyfmt.key_id_of(plaintext) == key.key_id
    found = store.authenticate(plaintext)
    assert found is not None and found[1].org_id == "acme-inc" and found[1].country == "DE"
    assert store.authenticate(plaintext[:-2] + "zz") is None
    assert store.authenticate("sk-dg-nothex!!!!!!_abc") is None
    store.revoke_key(key.key_id)
    assert store.authenticate(plaintext) is None
    with pytest.raises(NotFoundError):
        store.revoke_key("000000000000")


def test_plaintext_keys_never_reach_disk_and_the_secret_is_private(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_account("a")
    _, plaintext = store.create_key("a")
    store.close()
    for path in tmp_path.iterdir():
        assert plaintext.encode() not in path.read_bytes()
        assert plaintext.split("_", 1)[1].encode() not in path.read_bytes()
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_hash_depends_on_the_deployment_secret(tmp_path: Path) -> None:
    assert keyfmt.hash_key(b"one", "sk-dg-x") != keyfmt.hash_key(b"two", "sk-dg-x")
    store = open_store(tmp_path / "a")
    store.upsert_account("a")
    _, plaintext = store.create_key("a")
    other = open_store(tmp_path / "a", secret="a-different-secret")
    assert other.authenticate(plaintext) is None


def test_keys_need_an_existing_account(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        open_store(tmp_path).create_key("ghost")


def test_upsert_keeps_fields_not_given(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    first = store.upsert_account("a", org_id="o", verified=True, email_domain="example.org")
    second = store.upsert_account("a", tier="enterprise")
    assert (second.org_id, second.verified, second.email_domain, second.tier) == (
        "o",
        True,
        "example.org",
        "enterprise",
    )
    assert second.created_at == first.created_at
    with pytest.raises(ValueError, match="unknown account fields"):
        store.upsert_account("a", colour="blue")


def test_accounts_file_roundtrip(tmp_path: Path) -> None:
    store = open_store(tmp_path / "one")
    store.upsert_account("a", org_id="o", payment_fingerprint="pf1", limits_override={"requests": ["9/minute"]})
    store.upsert_account("b", verified=True)
    path = tmp_path / "accounts.jsonl"
    import orjson

    path.write_bytes(b"".join(orjson.dumps(a.to_json()) + b"\n" for a in store.iter_accounts()))
    other = open_store(tmp_path / "two")
    assert other.import_accounts(read_accounts(path)) == 2
    assert [a.to_json() for a in other.iter_accounts()] == [a.to_json() for a in store.iter_accounts()]


def test_bad_accounts_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"account_id": "a"}\n{"org_id": "no id"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        list(read_accounts(path))
