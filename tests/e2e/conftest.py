from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.processes import Gateway, Mock, running_gateway

StartGateway = Callable[..., Gateway]

UPSTREAM_KEY = 'api_key = "upstream-secret"'


@pytest.fixture
def start_gateway(tmp_path: Path, mock_upstream: Mock) -> Iterator[StartGateway]:
    """Start `distillguard serve` in front of the shared mock; stopped (SIGTERM) at the end of the test."""
    stack = ExitStack()
    count = 0

    def start(
        config: str = "",
        upstream: str | None = None,
        upstream_extra: str = UPSTREAM_KEY,
        accounts: dict[str, list[str]] | None = None,
        server: str = "",
    ) -> Gateway:
        nonlocal count
        count += 1
        where = tmp_path / f"gw{count}"
        where.mkdir()
        return stack.enter_context(
            running_gateway(where, upstream or mock_upstream.base_url, config, upstream_extra, accounts, server)
        )

    with stack:
        yield start


@pytest.fixture
def gateway(start_gateway: StartGateway) -> Gateway:
    return start_gateway()
