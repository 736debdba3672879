"""State store: accounts, keys as keyed hashes, revocation, the accounts file; each test on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from distillguard.store import keys as keyfmt
from distillguard.store import open_store
from distillguard.store.accounts_file import read_accounts
from distillguard.store.state import NotFoundError
from tests.conftest import StateDatabases, pg_admin


def test_key_roundtrip_and_revocation(tmp_path: Path, store_url: str) -> None:
    store = open_store(tmp_path, store_url)
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


def test_plaintext_keys_never_reach_disk_and_the_secret_is_private(
    tmp_path: Path, state_databases: StateDatabases
) -> None:
    store = open_store(tmp_path, state_databases.new())
    store.upsert_account("a")
    _, plaintext = store.create_key("a")
    store.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    if state_databases.server is not None:
        # The server's files: the database's own and the write-ahead log, flushed by a checkpoint.
        with pg_admin(state_databases.server) as admin:
            admin.execute("CHECKPOINT")
            row = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (state_databases.made[0],)).fetchone()
        assert row is not None
        data = state_databases.server.data
        written = [p for p in [*(data / "base" / str(row[0])).iterdir(), *(data / "pg_wal").iterdir()] if p.is_file()]
    assert written
    for path in written:
        assert plaintext.encode() not in path.read_bytes()
        assert plaintext.split("_", 1)[1].encode() not in path.read_bytes()
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_times_come_back_as_the_same_instant_in_utc(tmp_path: Path, state_databases: StateDatabases) -> None:
    url = state_databases.new()
    if state_databases.server is not None:
        # A server whose sessions default to another zone: the store must still hand back UTC.
        with pg_admin(state_databases.server) as admin:
            admin.execute(f"ALTER DATABASE {state_databases.made[0]} SET timezone TO 'Asia/Kolkata'")
    store = open_store(tmp_path, url)
    moment = datetime(2026, 3, 1, 23, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-8)))
    account = store.upsert_account("a", created_at=moment)
    key, _ = store.create_key("a")
    again = store.get_account("a")
    assert again is not None and again.created_at is not None
    assert again.created_at == moment == account.created_at
    assert (
        again.created_at.utcoffset() == timedelta(0) and again.to_json()["created_at"] == "2026-03-02T07:30:15.123456Z"
    )
    [listed] = store.list_keys("a")
    assert listed.created_at == key.created_at and listed.created_at.utcoffset() == timedelta(0)


def test_hash_depends_on_the_deployment_secret(tmp_path: Path, store_url: str) -> None:
    assert keyfmt.hash_key(b"one", "sk-dg-x") != keyfmt.hash_key(b"two", "sk-dg-x")
    store = open_store(tmp_path / "a", store_url)
    store.upsert_account("a")
    _, plaintext = store.create_key("a")
    assert store.authenticate(plaintext) is not None
    other = open_store(tmp_path / "a", store_url, secret="a-different-secret")
    assert other.authenticate(plaintext) is None


def test_keys_need_an_existing_account(tmp_path: Path, store_url: str) -> None:
    with pytest.raises(NotFoundError):
        open_store(tmp_path, store_url).create_key("ghost")


def test_upsert_keeps_fields_not_given(tmp_path: Path, store_url: str) -> None:
    store = open_store(tmp_path, store_url)
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


def test_accounts_file_roundtrip(tmp_path: Path, state_databases: StateDatabases) -> None:
    store = open_store(tmp_path / "one", state_databases.new())
    store.upsert_account("a", org_id="o", payment_fingerprint="pf1", limits_override={"requests": ["9/minute"]})
    store.upsert_account("b", verified=True)
    path = tmp_path / "accounts.jsonl"
    import orjson

    path.write_bytes(b"".join(orjson.dumps(a.to_json()) + b"\n" for a in store.iter_accounts()))
    other = open_store(tmp_path / "two", state_databases.new())
    assert other.import_accounts(read_accounts(path)) == 2
    assert [a.to_json() for a in other.iter_accounts()] == [a.to_json() for a in store.iter_accounts()]


def test_bad_accounts_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"account_id": "a"}\n{"org_id": "no id"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        list(read_accounts(path))
