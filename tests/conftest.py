from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Mock, running_mock


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[Mock]:
    """One mock upstream process shared by the end-to-end tests (it is stateless but for its counters)."""
    with running_mock("--api-key", "upstream-secret") as mock:
        yield mock
