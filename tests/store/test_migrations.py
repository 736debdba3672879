"""Migrations: a fresh database is built to the schema the code uses, one made before migrations is adopted with
its rows, and processes opening a store at the same moment do not trip over each other; on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, func, select

from distillguard.config import RespondConfig
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS
from distillguard.respond.book import CaseBook
from distillguard.store import migrate, open_store
from distillguard.store.migrations.versions import v0001_baseline
from distillguard.store.schema import metadata
from distillguard.store.state import STATE_DB, store_engine

DATA = Path(__file__).parent / "data"
# Made by the releases before migrations (`sqlite3 state.db .dump`): one before standings.campaign and the intel
# tables, one just before this change. Each holds an account with this key (under secret "legacy-secret"), a
# confirmed campaign case on two accounts, an appeal and an admin token: 9 audit entries.
LEGACY = {
    "state-before-campaigns.sql": "sk-dg-a5d98a7eadb1_s51VxjAZ-WLGAShuzCX-5YIeMuw7YZY2N-AF8vcJb9Q",
    "state-before-migrations.sql": "sk-dg-01573711ca07_MyRzafjNf0jh-O_rq5XhYNLGKb3UDY-g083dNkfw3c0",
}


def differences(engine: Engine, target: MetaData) -> list[Any]:
    """What autogenerate would change to make the database match ``target`` (nothing, when they agree)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), target))


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
            if engine.dialect.has_table(conn, t.name)
        }


def test_a_fresh_database_is_built_to_the_schema_the_code_uses(tmp_path: Path, store_url: str) -> None:
    engine = store_engine(tmp_path, store_url)
    assert migrate.current(engine) is None and not migrate.unversioned(engine)
    store = open_store(tmp_path, store_url)
    assert migrate.current(engine) == migrate.head() == migrate.history()[-1].revision == migrate.HEAD
    assert differences(engine, metadata) == []
    assert not migrate.unversioned(engine)
    store.close()
    engine.dispose()


def test_each_revision_builds_what_it_describes(tmp_path: Path, store_url: str) -> None:
    engine = store_engine(tmp_path, store_url)
    assert migrate.upgrade(engine, "0001") == "0001"
    assert differences(engine, v0001_baseline._tables()) == []
    assert differences(engine, metadata) != []  # the later revisions are not there yet
    assert migrate.upgrade(engine) == migrate.head()
    assert differences(engine, metadata) == []
    engine.dispose()


@pytest.mark.parametrize("dump", sorted(LEGACY))
def test_a_sqlite_database_made_before_migrations_is_adopted_with_every_row(tmp_path: Path, dump: str) -> None:
    with sqlite3.connect(tmp_path / STATE_DB) as conn:
        conn.executescript((DATA / dump).read_text())
    engine = store_engine(tmp_path)
    assert migrate.current(engine) is None and migrate.unversioned(engine)
    before = row_counts(engine)
    store = open_store(tmp_path, secret="legacy-secret")
    assert migrate.current(engine) == migrate.head() and differences(engine, metadata) == []
    after = row_counts(engine)
    assert after == {**dict.fromkeys(metadata.tables, 0), **before} and after["audit_log"] == 9
    found = store.authenticate(LEGACY[dump])
    assert found is not None and found[1].org_id == "acme-inc"
    book = CaseBook(store.engine, store.secret, RespondConfig(), dict(DEFAULT_THRESHOLDS))
    [case] = book.cases()
    assert case.status == "open" and case.members == ["acme", "b2"]  # confirmed, then reopened by the appeal
    assert book.standing("b2").level == "block" and len(book.appeals(case.case_id)) == 1
    # The chain carries on from the adopted entries, and a long actor (revision 0002) fits.
    book.appeal(case.case_id, "acme", "still a reseller", filed_by="x" * 200)
    assert book.verify() == (10, None)
    store.close()
    engine.dispose()


def test_a_postgresql_or_sqlite_database_made_by_create_all_is_adopted(tmp_path: Path, store_url: str) -> None:
    # store_url was always any SQLAlchemy URL: a PostgreSQL store made before migrations has the baseline's tables.
    engine = store_engine(tmp_path, store_url)
    v0001_baseline._tables().create_all(engine)
    first = open_store(tmp_path, store_url, secret="s")
    first.upsert_account("kept")
    first.close()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")  # as if the account had been written before migrations
    assert migrate.unversioned(engine)
    store = open_store(tmp_path, store_url, secret="s")
    assert [a.account_id for a in store.iter_accounts()] == ["kept"]
    assert migrate.current(engine) == migrate.head() and differences(engine, metadata) == []
    store.close()
    engine.dispose()


def _open_at_once(args: tuple[str, str, Any]) -> str:
    data_dir, url, barrier = args
    barrier.wait()
    store = open_store(Path(data_dir), url, secret="s")
    revision = migrate.current(store.engine)
    store.close()
    return str(revision)


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path, store_url: str) -> None:
    processes = 4
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            revisions = pool.map(_open_at_once, [(str(tmp_path), store_url, barrier)] * processes)
    assert revisions == [migrate.head()] * processes
    engine = create_engine(store_url)
    assert differences(engine, metadata) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1
    engine.dispose()


def test_the_history_is_one_chain_from_the_baseline() -> None:
    revisions = migrate.history()
    assert revisions[0].revision == "0001" and revisions[0].down_revision is None
    assert [r.down_revision for r in revisions[1:]] == [r.revision for r in revisions[:-1]]
    assert all(r.doc for r in revisions)
