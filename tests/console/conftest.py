from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from distillguard.console.app import console_routes
from tests.console.world import World, build
from tests.support.servers import Redis


class Console:
    """A test client of the console app, and the world behind it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client = TestClient(Starlette(routes=console_routes(world.ctx)), follow_redirects=False)

    def login(self, token: str | None = None) -> None:
        form = self.client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        reply = self.client.post(
            "/console/login", data={"token": token or self.world.token, "csrf": csrf.group(1), "next": "/console/"}
        )
        assert reply.status_code == 303, reply.text

    def csrf(self, path: str) -> str:
        """The CSRF token of a page's forms (the session's)."""
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert found is not None
        return found.group(1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build(tmp_path)
    yield w
    w.ctx.close()


@pytest.fixture(params=["embedded", "shared"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, store_url: str) -> Iterator[World]:
    """The world on SQLite, then on PostgreSQL (``store_url``); each as an embedded deployment (the event log) and
    as a shared one (events to a Redis stream, archived by an ingest worker that keeps the store's rollups)."""
    stream = request.getfixturevalue("redis_server").url if request.param == "shared" else None
    w = build(tmp_path, store_url, stream)
    yield w
    w.ctx.close()


@pytest.fixture
def shared_world(tmp_path: Path, store_url: str, redis_server: Redis) -> Iterator[World]:
    """A shared deployment's world (events archived from a Redis stream), on SQLite and on PostgreSQL."""
    w = build(tmp_path, store_url, redis_server.url)
    yield w
    w.ctx.close()


@pytest.fixture
def shared_signed_in(shared_world: World) -> Console:
    console = Console(shared_world)
    console.login()
    return console


@pytest.fixture
def console(world: World) -> Console:
    return Console(world)


@pytest.fixture
def signed_in(console: Console) -> Console:
    console.login()
    return console
