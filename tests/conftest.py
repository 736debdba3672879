from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.support.processes import Mock, running_mock
from tests.support.servers import Postgres, Redis, ServerUnavailable, running_postgres, running_redis


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist workers (`make test`, docs/testing.md), the files that drive real processes (marked ``e2e``) or
    declare a longer timeout go first: they are the long ones, and started last they would leave the other workers
    idle at the end. Files stay whole and keep their order otherwise; every worker computes the same order."""
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("e2e") or item.get_closest_marker("timeout")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[Mock]:
    """One mock upstream process shared by the end-to-end tests (it is stateless but for its counters)."""
    with running_mock("--api-key", "upstream-secret") as mock:
        yield mock


def unavailable(exc: ServerUnavailable) -> None:
    """A server the tests need is not installed: a CI run fails (it must test against it), a local run skips."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{exc}; CI runs these tests against the real server", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    """A fresh redis-server of its own for one test (tests/support/servers.py)."""
    try:
        with running_redis() as server:
            yield server
    except ServerUnavailable as exc:
        unavailable(exc)


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server of its own (see tests/support/servers.py), in a directory under the system's temp dir:
    as root the server runs as ``postgres``, which cannot enter pytest's private (0700) temp tree.

    Without the binaries a CI run fails (it must test both databases); a local run skips with the reason."""
    root = Path(tempfile.mkdtemp(prefix="distillguard-pg-"))
    try:
        with ExitStack() as stack:
            try:
                server = stack.enter_context(running_postgres(root))
            except ServerUnavailable as exc:
                unavailable(exc)
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One server for the session; tests make their own databases on it (:class:`StateDatabases`)."""
    with postgres_server() as server:
        yield server


def pg_admin(server: Postgres) -> psycopg.Connection[tuple[object, ...]]:
    """A superuser connection (autocommit: CREATE and DROP DATABASE refuse to run inside a transaction)."""
    return psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres", autocommit=True)


@dataclass
class StateDatabases:
    """Fresh, empty state-store databases of one kind for one test: SQLite files, or databases on the session's
    PostgreSQL server (dropped at the end of the test)."""

    kind: str
    tmp: Path
    server: Postgres | None = None
    made: list[str] = field(default_factory=list)

    def new(self) -> str:
        """The URL of a new, empty database."""
        name = f"t_{secrets.token_hex(6)}"
        self.made.append(name)
        if self.server is None:
            return f"sqlite:///{self.tmp / name}.db"
        with pg_admin(self.server) as admin:
            admin.execute(f"CREATE DATABASE {name} OWNER distillguard TEMPLATE template0")
        return self.server.url.rsplit("/", 1)[0] + "/" + name

    def drop(self) -> None:
        if self.server is None:
            return
        with pg_admin(self.server) as admin:
            for name in self.made:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def state_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDatabases]:
    """Runs the test once on SQLite and once on PostgreSQL (ids ``sqlite`` / ``postgresql``; ``-k sqlite`` picks)."""
    server = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    databases = StateDatabases(str(request.param), tmp_path, server)
    yield databases
    databases.drop()


@pytest.fixture
def store_url(state_databases: StateDatabases) -> str:
    """The URL of an empty state-store database, SQLite or PostgreSQL (the test runs on each)."""
    return state_databases.new()
