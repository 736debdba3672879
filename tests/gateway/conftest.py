"""What the gateway's in-process tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from distillguard.config import EventsConfig, Settings, UpstreamConfig
from distillguard.gateway.app import Gateway
from distillguard.mock_upstream.server import running_mock


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    """A started gateway in this process, in front of the in-process mock, with a key for account "acct"."""
    async with running_mock() as base_url:
        gw = Gateway(
            Settings(
                data_dir=tmp_path,
                upstreams=[UpstreamConfig(base_url=base_url)],
                events=EventsConfig(flush_interval_ms=10),
            )
        )
        gw.store.upsert_account("acct")
        _, key = gw.store.create_key("acct")
        await gw.startup()
        try:
            yield gw, key
        finally:
            await gw.shutdown()
