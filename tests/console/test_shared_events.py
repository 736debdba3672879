"""The console of a shared deployment (``[events] sink = "redis"``): no events.db, traffic from the rollups the
ingest worker kept in the store, an account's calls and a call by its id from the Parquet archive; on SQLite and
PostgreSQL. (The read model's tests run on this deployment too: ``any_store`` in conftest.py.)"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from distillguard.console.pages import account as account_page
from distillguard.console.read.account import AccountDetail, read_account
from distillguard.events.sqlite import EVENTS_DB
from tests.console.conftest import Console
from tests.console.test_pages import text


def test_the_overview_shows_the_traffic_the_ingest_worker_counted(shared_signed_in: Console) -> None:
    assert not (shared_signed_in.world.ctx.settings.data_dir / EVENTS_DB).exists()
    page = shared_signed_in.client.get("/console/?range=week")
    assert page.status_code == 200
    shown = text(page.text)
    assert "43 calls, last week" in shown  # 6 + 30 + 3 + 2 + 1 + 1, from the store's per-minute rollup
    assert "No event log" not in shown


def test_an_account_page_shows_its_calls_from_the_archive(shared_signed_in: Console) -> None:
    page = shared_signed_in.client.get("/console/accounts/harvester")
    assert page.status_code == 200
    shown = text(page.text)
    assert "30 of the latest 30 calls ask for step-by-step reasoning" in shown  # signals read from the archive
    assert "Think step by step" in shown  # a sample exchange, with its prompt
    assert "No calls in the event log" not in shown
    # A call behind a reason opens in full, found in the archive by its id.
    event = re.search(r'href="(/console/events/[^"]+)"', page.text)
    assert event is not None
    call = shared_signed_in.client.get(event.group(1))
    assert call.status_code == 200 and "The answer, step by step." in call.text
    assert shared_signed_in.client.get("/console/events/req_nope").status_code == 404


def test_the_accounts_table_sorts_by_the_calls_the_rollups_hold(shared_signed_in: Console) -> None:
    page = shared_signed_in.client.get("/console/accounts?sort=calls")
    assert page.status_code == 200
    order = re.findall(r'href="/console/accounts/([^"?]+)"', page.text)
    assert order[:3] == ["harvester", "acme-app", "eval-lab"]


def test_an_account_only_the_archive_knows_has_a_page_with_its_calls(shared_signed_in: Console) -> None:
    page = shared_signed_in.client.get("/console/accounts/ghost")
    assert page.status_code == 200
    shown = text(page.text)
    assert "This account is not in the store" in shown and "hello" in shown


def test_an_account_page_says_when_the_archive_search_stopped_at_its_bound(
    shared_signed_in: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = text(shared_signed_in.client.get("/console/accounts/harvester").text)
    assert "The archive search stopped at its bound" not in shown

    def bounded(*args: Any, **kwargs: Any) -> AccountDetail:
        return dataclasses.replace(read_account(*args, **kwargs), calls_complete=False)

    monkeypatch.setattr(account_page, "read_account", bounded)
    shown = text(shared_signed_in.client.get("/console/accounts/harvester").text)
    assert "The archive search stopped at its bound" in shown and "Think step by step" in shown
