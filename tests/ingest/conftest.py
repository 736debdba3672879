from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import Redis, ServerUnavailable, running_redis


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    try:
        with running_redis() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
