"""The accounts table's read model, on SQLite and PostgreSQL: every account on some page exactly once, in order,
whichever database owns the sort key; filters; and the live JSON the table polls."""

from __future__ import annotations

import pytest

from distillguard.console.read import accounts as model
from distillguard.console.read.accounts import SORTS, AccountFilter, AccountQuery, AccountsReader
from distillguard.events.schema import UNAUTHENTICATED
from tests.console.conftest import Console
from tests.console.world import HOSTILE, World

EVERYONE = {"acme-app", "harvester", "eval-lab", "quiet", HOSTILE, "ghost", UNAUTHENTICATED}


def reader(world: World) -> AccountsReader:
    return AccountsReader(world.ctx.engine, world.ctx.events, world.ctx.settings.limits.default_tier)


def walk(r: AccountsReader, query: AccountQuery, size: int = 2) -> list[str]:
    """Every id the pages of ``query`` show, page after page."""
    seen: list[str] = []
    offset = 0
    while True:
        page = r.page(AccountQuery(query.filter, query.sort, query.desc, offset, size))
        seen += [row.account_id for row in page.rows]
        if not page.has_next:
            return seen
        offset += size


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("desc", [True, False])
def test_every_account_is_on_exactly_one_page(any_store: World, sort: str, desc: bool) -> None:
    seen = walk(reader(any_store), AccountQuery(sort=sort, desc=desc))
    assert sorted(seen) == sorted(EVERYONE)


def test_risk_order_then_unscored_accounts_then_accounts_only_the_log_knows(any_store: World) -> None:
    seen = walk(reader(any_store), AccountQuery(sort="risk"))
    assert seen == ["harvester", "eval-lab", HOSTILE, "acme-app", "quiet", UNAUTHENTICATED, "ghost"]
    ascending = walk(reader(any_store), AccountQuery(sort="risk", desc=False))
    assert ascending[:4] == ["acme-app", HOSTILE, "eval-lab", "harvester"]


def test_traffic_order_from_the_event_log_then_accounts_that_never_called(any_store: World) -> None:
    r = reader(any_store)
    seen = walk(r, AccountQuery(sort="calls"))
    assert seen[:3] == ["harvester", "acme-app", "eval-lab"]
    assert seen[-1] == "quiet"  # never called
    first = r.page(AccountQuery(sort="calls", limit=1)).rows[0]
    assert (first.traffic.calls, first.traffic.tokens, first.risk, first.verdict) == (30, 1800, 0.97, "block")
    # Block waits for a reviewer (review.automatic_up_to = degrade): degrade applies meanwhile.
    assert (first.level, first.pending, first.tier, first.known) == ("degrade", "block", "free", True)


def test_filters(any_store: World) -> None:
    r = reader(any_store)

    def ids(**f: object) -> set[str]:
        return {row.account_id for row in r.page(AccountQuery(AccountFilter(**f), sort="calls")).rows}  # type: ignore[arg-type]

    assert ids(verdict="block") == {"harvester"}
    assert ids(min_risk=0.3) == {"harvester", "eval-lab"}
    # An account without a tier has the default one (standard).
    assert ids(tier="standard") == {"acme-app", "eval-lab", HOSTILE}
    assert ids(tier="enterprise") == {"quiet"}
    assert ids(q="ACME") == {"acme-app"}  # by organisation, any case
    assert ids(q="evalco") == {"eval-lab"}
    assert ids(q="gho") == {"ghost"}  # an id only the event log knows
    assert ids(q="%") == set()  # LIKE wildcards are text
    assert ids(verdict="watch", q="eval") == {"eval-lab"}
    assert ids(verdict="challenge") == set()


def test_filters_that_let_many_through_walk_the_owning_database(
    any_store: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same answers when candidates are too many to sort in memory (here: more than one)."""
    monkeypatch.setattr(model, "CANDIDATES", 1)
    monkeypatch.setattr(model, "WALK_CHUNK", 2)
    r = reader(any_store)
    assert walk(r, AccountQuery(AccountFilter(tier="standard"), sort="calls")) == ["acme-app", "eval-lab", HOSTILE]
    assert walk(r, AccountQuery(AccountFilter(q="e"), sort="last_seen", desc=False))[-1] == "quiet"
    assert sorted(walk(r, AccountQuery(AccountFilter(min_risk=0.0), sort="tokens"))) == sorted(
        ["acme-app", "harvester", "eval-lab", HOSTILE]
    )
    assert walk(r, AccountQuery(sort="risk"), size=3)[-2:] == [UNAUTHENTICATED, "ghost"]


def test_the_table_page_and_its_live_json_agree(signed_in: Console) -> None:
    html = signed_in.client.get("/console/accounts?sort=calls&verdict=block")
    assert html.status_code == 200
    assert 'data-id="harvester"' in html.text and 'data-id="acme-app"' not in html.text
    live = signed_in.client.get("/console/api/accounts?sort=calls&verdict=block").json()
    assert [row["id"] for row in live["rows"]] == ["harvester"]
    cells = live["rows"][0]["cells"]
    assert cells["calls"]["text"] == "30" and cells["verdict"] == {"text": "block", "badge": "lvl-block"}
    assert live["rows"][0]["href"] == "/console/accounts/harvester"
    # Sort headers are links that flip the direction of the active column.
    assert 'aria-sort="descending"' in html.text
    assert "/console/accounts?verdict=block&amp;sort=calls&amp;dir=asc" in html.text


def test_a_hostile_account_id_is_escaped_everywhere(signed_in: Console) -> None:
    table = signed_in.client.get("/console/accounts?q=script").text
    assert "<script>alert" not in table and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in table
    assert "<b>org</b>" not in table
    live = signed_in.client.get("/console/api/accounts?q=script").json()
    assert live["rows"][0]["href"] == "/console/accounts/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%2F..%26"
    detail = signed_in.client.get(live["rows"][0]["href"])
    assert detail.status_code == 200
    for raw in ("<script>alert", "<b>sig</b>", "<i>detail</i>", "<script>document.title", '<img src=x onerror="'):
        assert raw not in detail.text
    assert "&lt;script&gt;document.title" in detail.text  # the prompt, shown as text
