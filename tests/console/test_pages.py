"""Each console page shows what its area is about, from the store and the event log; bad input gets a clear page
with the right status; review decisions and watermark checks go through the real case book and detector."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from distillguard.config import load_settings
from distillguard.gateway.app import Gateway, build_app
from distillguard.watermark.text import mark
from tests.console.conftest import Console
from tests.console.world import CLUSTER, PARTNER
from tests.watermark.test_text import ANSWER


def text(html: str) -> str:
    """The page's text, markup removed and whitespace collapsed (what a reader sees, roughly)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_overview(signed_in: Console) -> None:
    page = signed_in.client.get("/console/?range=week")
    assert page.status_code == 200
    shown = text(page.text)
    assert "43 calls, last week" in shown  # 6 + 30 + 3 + 2 + 1 + 1, from the per-minute rollup
    assert "1 cases waiting for review" in shown
    assert "1 of 1 campaigns flagged" in shown
    # Three figures, handed over as JSON data (never as script), and plotly from this server.
    assert page.text.count('type="application/json"') == 3
    assert re.search(r'src="/console/static/plotly\.min\.js\?v=[0-9a-f]{12}"', page.text)
    assert signed_in.client.get("/console/?range=year").status_code == 400


def test_account_detail_shows_reasons_with_the_calls_behind_them(signed_in: Console) -> None:
    page = signed_in.client.get("/console/accounts/harvester")
    assert page.status_code == 200
    shown = text(page.text)
    assert "cot_elicitation" in shown
    assert "30 of the latest 30 calls ask for step-by-step reasoning" in shown
    assert "partner_intel" in shown
    assert signed_in.world.case_id in shown  # its case
    assert CLUSTER in shown  # its campaign
    assert signed_in.world.check_id in shown  # the watermark check about it
    assert "Think step by step" in shown  # a sample exchange, with its prompt
    assert "account tokens 40000/minute tier free" in shown.replace("  ", " ")  # its tier's limits
    assert "Risk over time" in page.text  # the timeline figure (two scores in its history)
    # A call behind a reason opens in full.
    event = re.search(r'href="(/console/events/[^"]+)"', page.text)
    assert event is not None
    call = signed_in.client.get(event.group(1))
    assert call.status_code == 200 and "The answer, step by step." in call.text


def test_an_account_only_the_event_log_knows_has_a_page(signed_in: Console) -> None:
    page = signed_in.client.get("/console/accounts/ghost")
    assert page.status_code == 200
    assert "This account is not in the store" in page.text


def test_error_pages_say_what_is_wrong_without_a_trace(signed_in: Console) -> None:
    for path, status, says in [
        ("/console/accounts/nobody", 404, "There is no account &#39;nobody&#39;"),
        ("/console/accounts?min_risk=2", 400, "min_risk must be between 0 and 1"),
        ("/console/accounts?sort=bogus", 400, "sort must be one of risk, verdict, calls, tokens, last_seen"),
        ("/console/accounts?offset=-1", 400, "offset must be a whole number"),
        ("/console/campaigns/clu_nope", 404, "There is no campaign"),
        ("/console/review/case_nope", 404, "no case"),
        ("/console/events/req_nope", 404, "There is no event"),
        ("/console/watermark/chk_nope", 404, "There is no check"),
        ("/console/nowhere", 404, "There is no console page at this address"),
    ]:
        reply = signed_in.client.get(path)
        assert reply.status_code == status, path
        assert says in reply.text, path
        assert "Traceback" not in reply.text
    api = signed_in.client.get("/console/api/accounts?verdict=maybe")
    assert api.status_code == 400 and "verdict must be one of" in api.json()["error"]["message"]
    assert signed_in.client.delete("/console/accounts").status_code == 405


def test_campaign_page_shows_the_graph_members_and_linking_evidence(signed_in: Console) -> None:
    listing = signed_in.client.get("/console/campaigns")
    assert CLUSTER in listing.text and "math, general" in text(listing.text)
    page = signed_in.client.get(f"/console/campaigns/{CLUSTER}")
    assert page.status_code == 200
    shown = text(page.text)
    for member in ("harvester", "eval-lab", "quiet"):
        assert f'href="/console/accounts/{member}"' in page.text
    assert "shared template (content) on 2 links" in shown
    assert "shared payment (account, 1.00): card" in shown  # the evidence on one link
    figure = re.search(r'<script type="application/json" id="fig-graph">(.*?)</script>', page.text, re.S)
    assert figure is not None and "harvester ~ eval-lab" in figure.group(1)  # edge hover text
    assert signed_in.client.get("/console/campaigns?verdict=block").text.count(CLUSTER) == 0


def test_review_reverse_applies_through_the_case_book(signed_in: Console) -> None:
    case_id = signed_in.world.case_id
    queue = signed_in.client.get("/console/review")
    assert case_id in queue.text
    csrf = signed_in.csrf(f"/console/review/{case_id}")
    missing = signed_in.client.post(f"/console/review/{case_id}/reverse", data={"csrf": csrf, "reason": "  "})
    assert missing.status_code == 400 and "The form needs a reason" in missing.text

    done = signed_in.client.post(
        f"/console/review/{case_id}/reverse", data={"csrf": csrf, "reason": "A research lab under contract."}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/console/review/{case_id}?done=reversed"
    book = signed_in.world.ctx.book
    assert book.case(case_id).status == "reversed"
    assert book.standing("harvester").level == "allow"
    entry = next(e for e in book.audit(0, 1000, case_id=case_id) if e.action == "case_reversed")
    assert entry.actor == "reviewer:alice" and entry.detail["reason"] == "A research lab under contract."
    assert "Case reversed" in signed_in.client.get(done.headers["location"]).text

    # A reversed case cannot be confirmed: the case book's message, on the case page, with its status.
    again = signed_in.client.post(f"/console/review/{case_id}/confirm", data={"csrf": csrf, "reason": "second look"})
    assert again.status_code == 409
    assert "only open or escalated cases can be confirmed" in again.text
    assert signed_in.client.post("/console/review/x/undo", data={"csrf": csrf, "reason": "r"}).status_code == 404


def test_confirm_at_a_chosen_level(signed_in: Console) -> None:
    case_id = signed_in.world.case_id
    csrf = signed_in.csrf("/console/review")
    bad = signed_in.client.post(
        f"/console/review/{case_id}/confirm", data={"csrf": csrf, "reason": "seen it", "level": "allow"}
    )
    assert bad.status_code == 400 and "A case is confirmed at one of" in bad.text
    assert ">seen it</textarea>" in bad.text  # what the reviewer typed is kept
    ok = signed_in.client.post(
        f"/console/review/{case_id}/confirm", data={"csrf": csrf, "reason": "seen it", "level": "challenge"}
    )
    assert ok.status_code == 303
    assert signed_in.world.ctx.book.standing("harvester").level == "challenge"


def test_intel_page_names_partners_and_what_matched(signed_in: Console) -> None:
    shown = text(signed_in.client.get("/console/intel").text)
    assert "Provider A" in shown and PARTNER in shown
    assert "1 indicator" in shown
    assert "payment fingerprint" in shown  # the indicator's kind
    assert "harvester" in shown and "partner intel on campaign x" in shown  # what matched here


def test_watermark_check_of_a_pasted_text_is_recorded(signed_in: Console) -> None:
    ctx = signed_in.world.ctx
    marked = mark(ANSWER, ctx.watermarks.deployment, "strong")
    listed = signed_in.client.get("/console/watermark")
    assert signed_in.world.check_id in listed.text
    reply = signed_in.client.post(
        "/console/watermark", data={"csrf": signed_in.csrf("/console/watermark"), "text": marked, "accounts": ""}
    )
    assert reply.status_code == 303
    page = signed_in.client.get(reply.headers["location"])
    assert page.status_code == 200 and "watermark found" in page.text
    assert "reviewer:alice" in page.text
    empty = signed_in.client.post(
        "/console/watermark", data={"csrf": signed_in.csrf("/console/watermark"), "text": " "}
    )
    assert empty.status_code == 400 and "The form needs a text" in empty.text


def test_static_files_are_served_from_the_packages_with_caching(signed_in: Console) -> None:
    plotly = signed_in.client.get("/console/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert plotly.status_code == 200 and plotly.headers["content-encoding"] == "gzip"
    assert plotly.content.startswith(b"/**\n* plotly.js")  # decoded by the client
    assert "immutable" in plotly.headers["cache-control"]
    again = signed_in.client.get("/console/static/plotly.min.js", headers={"if-none-match": plotly.headers["etag"]})
    assert again.status_code == 304
    assert signed_in.client.get("/console/static/../secret.key").status_code == 404
    assert signed_in.client.get("/console/static/other.js").status_code == 404


@pytest.mark.parametrize("enabled", [True, False])
def test_the_gateway_mounts_the_console_when_enabled(tmp_path: Path, enabled: bool) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        upstreams=[{"name": "u", "base_url": "http://127.0.0.1:9/v1"}],
        console={"enabled": enabled},
        detect={"enabled": False},
    )
    with TestClient(build_app(Gateway(settings)), follow_redirects=False) as client:
        bare = client.get("/console")
        login = client.get("/console/login")
        if enabled:
            assert bare.status_code == 307 and bare.headers["location"] == "/console/"
            assert login.status_code == 200 and "Log in to the console" in login.text
        else:
            # The gateway's own answer to an unknown URL, in OpenAI's shape.
            assert login.status_code == 404 and login.json()["error"]["code"] == "unknown_url"
