"""Schema migrations of the state store (Alembic), configured in code and run by the store when it opens.

Configured in code because the store is named by a URL in distillguard's own configuration: there is no
alembic.ini to ship or to find. Every process that opens the store (gateway replicas, CLI commands) brings the
database to the revision its code expects, under a lock, so that two of them starting at once do not both migrate:
a transaction-level advisory lock on PostgreSQL (whose DDL is transactional, so a failed migration leaves nothing
behind), ``BEGIN IMMEDIATE`` on SQLite (the database's one write lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from distillguard.store.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "distillguard.store:migrations"
VERSION_TABLE = "alembic_version"
# How long a SQLite connection waits for another's write lock, and how long a process waits for another's migration.
SQLITE_BUSY_MS = 5_000
_MIGRATION_WAIT_MS = 120_000
# The advisory lock every distillguard process takes to migrate ("dgstore" in ASCII: any constant would do).
_PG_LOCK = int.from_bytes(b"dgstore", "big")
# The newest revision in migrations/versions (tests/store/test_migrations.py checks that it is Alembic's head). A
# process whose database is already there reads the version table with one query and never loads Alembic (about
# 40 MB with what it imports, and 0.15 s): the gateway's every replica and every CLI command open the store.
HEAD = "0005"


@dataclass(frozen=True, slots=True)
class Revision:
    revision: str
    down_revision: str | None
    doc: str


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this code expects."""
    found = _scripts().get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError("no migrations found in distillguard.store.migrations")
    return found


def history() -> list[Revision]:
    """Every revision, oldest first."""
    walked = [Revision(s.revision, _single(s.down_revision), s.doc) for s in _scripts().walk_revisions()]
    return walked[::-1]


def _single(down: str | Sequence[str] | None) -> str | None:
    # The chain is linear (no merges): a revision has at most one parent.
    return down if down is None or isinstance(down, str) else ",".join(down)


def current(engine: Engine) -> str | None:
    """The database's revision; None for a database never migrated (empty, or made before migrations existed)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608
    return found[0] if len(found) == 1 else None


def unversioned(engine: Engine) -> bool:
    """Whether the database holds the store's tables without a revision (made by ``create_all`` before migrations):
    the next upgrade adopts it."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    return VERSION_TABLE not in names and bool(names & set(metadata.tables))


def upgrade(engine: Engine, target: str = "head") -> str:
    """Bring the database to ``target`` (default: this code's head); returns the revision it is at."""
    if target == "head" and current(engine) == HEAD:
        return HEAD  # the common case: no lock, no Alembic
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        _lock(conn)
        # Alembic sees the transaction the lock opened and runs inside it (it neither begins nor commits one);
        # a second process waiting on the lock then finds the database at head and has nothing to do.
        command.upgrade(_config(conn), target)
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.commit()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    if revision is None:  # pragma: no cover - upgrade always writes a revision
        raise RuntimeError("migration left no revision")
    return revision


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    elif conn.dialect.name == "sqlite":
        # Wait as long as another process's migration may take (a loaded machine, Alembic loading its scripts under
        # the lock) rather than the pool's 5 s; the connection goes back to the pool with the usual timeout.
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_MIGRATION_WAIT_MS}")
        # pysqlite opens transactions only before DML; DDL would run in autocommit without this explicit begin.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.begin()
