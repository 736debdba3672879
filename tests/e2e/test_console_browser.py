"""The console in a real browser (Debian's headless chromium through Playwright) against a real gateway driven by
the official openai SDK: log in, watch the accounts table update as traffic flows, open the campaign the gateway's
clustering job caught, reverse a blocked account's case and see the gateway serve it again, and do it by keyboard.

Every page is saved as a screenshot in test-artifacts/console/ (1280x800), for a person to look at.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from distillguard.demo import harvest_prompt, hydra_prompt
from distillguard.store import open_store
from distillguard.timefmt import utcnow
from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.test_response import CONFIG as RESPONSE_CONFIG
from tests.support.processes import Gateway, Mock, running_gateway

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
HYDRA = [f"trial-{4401 + i}" for i in range(5)]
HYDRA_SYSTEM = "You are a careful expert tutor. Never skip a step."
# test_response.py's gateway (rules-only scoring, close thresholds: a harvester is blocked within ~25 calls; the
# response syncs every 0.2 s), with the clustering job every 2 s and the accounts table polling twice a second.
CONFIG = (
    RESPONSE_CONFIG % "enforce"
    + """
[clusters]
interval_s = 2
lookback_h = 1
niceness = 0  # a niced job can starve on a machine busy with other tests

[console]
refresh_interval_s = 0.5
"""
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, mock_upstream: Mock) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("console")
    accounts = {"app": ["--org", "acme-inc"], "solo": [], **{a: ["--tier", "free"] for a in HYDRA}}
    with running_gateway(tmp, mock_upstream.base_url, CONFIG, UPSTREAM_KEY, accounts) as gw:
        # The hydra's accounts: signed up together under one card and one mail domain (what the clustering links).
        store = open_store(gw.data_dir)
        for account in HYDRA:
            store.upsert_account(
                account,
                payment_fingerprint="card-5c1f9e",
                email_domain="quickmail.example",
                created_at=utcnow() - timedelta(minutes=45),
            )
        store.close()
        yield gw


@pytest.fixture(scope="module")
def admin_token(gateway: Gateway) -> str:
    store = open_store(gateway.data_dir)
    from distillguard.config import load_settings
    from distillguard.respond.book import CaseBook

    settings = load_settings(None, data_dir=gateway.data_dir)
    book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
    _, token = book.create_admin_token("alice", "operator:tests")
    store.close()
    return token


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def page(browser: Browser, gateway: Gateway, admin_token: str) -> Iterator[Page]:
    """One signed-in tab for the module, with every browser console error and CSP violation collected."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.goto(f"{gateway.url}/console/")
    tab.fill("#token", admin_token)
    tab.click("button[type=submit]")
    expect(tab.locator("h1")).to_have_text("Overview")
    tab.problems = problems  # type: ignore[attr-defined]
    yield tab
    context.close()


def shot(tab: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def no_problems(tab: Page) -> None:
    """No script error and no Content-Security-Policy violation on the pages seen so far."""
    problems: list[str] = tab.problems  # type: ignore[attr-defined]
    assert not problems, problems


def client(gw: Gateway, account: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.keys[account], max_retries=0)


def until(check: Callable[[], bool], timeout: float = 30.0, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def test_login_refuses_a_bad_token_and_shows_the_overview(browser: Browser, gateway: Gateway, admin_token: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    tab = context.new_page()
    tab.goto(f"{gateway.url}/console/accounts")
    expect(tab).to_have_url(f"{gateway.url}/console/login?next=%2Fconsole%2Faccounts")
    shot(tab, "01-login")
    tab.fill("#token", "dg-admin-000000000000_not-a-real-token")
    tab.click("button[type=submit]")
    expect(tab.locator("[role=alert]")).to_contain_text("not a valid admin token")
    tab.fill("#token", admin_token)
    tab.click("button[type=submit]")
    # Back where the login was asked for, signed in under the token's name.
    expect(tab).to_have_url(f"{gateway.url}/console/accounts")
    expect(tab.locator(".who strong")).to_have_text("alice")
    context.close()


def test_the_accounts_table_updates_as_traffic_flows(page: Page, gateway: Gateway) -> None:
    app = client(gateway, "app")
    app.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "Hello"}], max_tokens=16)
    page.goto(f"{gateway.url}/console/accounts?sort=calls")
    row = page.locator('tr[data-id="app"]')
    expect(row).to_be_visible()
    calls = row.locator('td[data-col="calls"]')
    assert int(calls.inner_text()) <= 1  # the first call, if the event log has it yet
    page.evaluate("window.__sameDocument = true")
    for i in range(12):
        app.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": f"Summarise ticket {i}"}], max_tokens=16
        )
    # The count rises in place: the same document (no reload), the live region says what changed.
    expect(calls).to_have_text("13", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("[data-live-status]")).to_contain_text("changed")
    shot(page, "03-accounts")
    # Filters and sorting are plain links and forms: the verdict filter keeps only matching rows.
    page.select_option("#f-verdict", "block")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(f"{gateway.url}/console/accounts?q=&verdict=block&tier=&min_risk=&sort=calls&dir=desc")
    expect(page.locator('tr[data-id="app"]')).to_have_count(0)
    no_problems(page)


def _block(gw: Gateway, account: str) -> str:
    """Harvest until the gateway blocks the account; the case id its 403 names."""
    harvester = client(gw, account)
    rng = random.Random(5)
    for _ in range(120):
        try:
            harvester.chat.completions.create(
                model="mock-reasoner", messages=[{"role": "user", "content": harvest_prompt(rng)}], max_tokens=32
            )
        except openai.PermissionDeniedError as exc:
            refusal = exc
            break
        except openai.RateLimitError:
            time.sleep(0.05)
    else:
        raise AssertionError(f"{account} was never blocked")
    assert refusal.code == "account_blocked"
    return str(refusal.body["message"]).split("Case reference: ")[1].split(".")[0]  # type: ignore[index]


def test_a_reviewer_reverses_a_block_and_the_gateway_serves_the_account_again(page: Page, gateway: Gateway) -> None:
    case_id = _block(gateway, "solo")

    def queued() -> bool:  # the responder persists the case a moment after the block
        page.goto(f"{gateway.url}/console/review")
        return page.locator(f"a:text-is('{case_id}')").count() == 1

    assert until(queued, timeout=10, every=0.3)
    shot(page, "06-review")
    page.click(f"a:text-is('{case_id}')")
    expect(page.locator("h1")).to_contain_text(case_id)

    # The account's page shows why: its reasons and the calls behind them (the gateway writes scores every second).
    def scored() -> bool:
        page.goto(f"{gateway.url}/console/accounts/solo")
        return page.locator("ol.reasons").count() == 1

    assert until(scored, timeout=10, every=0.5)
    expect(page.locator("ol.reasons")).to_contain_text("cot_elicitation")
    expect(page.locator(".plot .main-svg").first).to_be_visible()
    shot(page, "04-account")
    page.locator(".examples a").first.click()
    expect(page.locator("h1")).to_contain_text("Call")
    shot(page, "05-call")

    page.goto(f"{gateway.url}/console/review/{case_id}")
    # A decision without a reason is refused by the form (required), and by the server.
    page.fill("#reason-reverse", "Evaluation partner under contract; verified by phone.")
    shot(page, "07-case")
    page.click("form[action$='/reverse'] button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("Case reversed")
    expect(page.locator(".status-line")).to_contain_text("reversed")

    # The gateway lifts the block: the next call is served.
    solo = client(gateway, "solo")
    reply = solo.chat.completions.create(
        model="mock-reasoner", messages=[{"role": "user", "content": harvest_prompt(random.Random(9))}], max_tokens=16
    )
    assert reply.choices[0].message.content
    no_problems(page)


def test_the_campaign_the_gateway_caught_is_shown_with_its_links(page: Page, gateway: Gateway) -> None:
    clients = [client(gateway, a) for a in HYDRA]
    rng = random.Random(11)
    # The operator's scheduler: every account calls at the same moment, seven pulses.
    for _ in range(7):
        for c in clients:
            c.chat.completions.create(
                model="mock-reasoner",
                messages=[{"role": "system", "content": HYDRA_SYSTEM}, {"role": "user", "content": hydra_prompt(rng)}],
                max_tokens=64,
            )
        time.sleep(0.3)

    def listed() -> bool:
        page.goto(f"{gateway.url}/console/campaigns")
        return page.locator("table.data tbody tr").count() > 0

    assert until(listed, timeout=40, every=1.0), "no campaign was stored by the clustering job"
    shot(page, "08-campaigns")
    page.locator("table.data tbody tr th a").first.click()
    expect(page.locator("h1")).to_contain_text("Campaign")
    # The graph is drawn, the members are the hydra's accounts, and the links carry their evidence.
    expect(page.locator(".plot .main-svg").first).to_be_visible()
    members = page.locator("#members ~ table tbody th a").all_inner_texts()
    assert set(members) == set(HYDRA), members
    expect(page.locator("#evidence ~ details").first).to_contain_text("links")
    shot(page, "09-campaign")
    no_problems(page)


def test_overview_intel_and_watermark_pages(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/console/")
    expect(page.locator(".plot.js-plotly-plot")).to_have_count(3)
    shot(page, "02-overview")
    page.goto(f"{gateway.url}/console/intel")
    expect(page.locator("h1")).to_have_text("Threat intel")
    shot(page, "10-intel")
    page.goto(f"{gateway.url}/console/watermark")
    page.fill("#w-text", "A short answer found on a public forum. It says very little.")
    page.fill("#w-accounts", "solo")
    page.click("form[action$='/watermark'] button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Check")
    expect(page.locator(".status-line")).to_contain_text("not found")
    shot(page, "12-check")
    page.goto(f"{gateway.url}/console/watermark")
    expect(page.locator("table.data tbody tr")).to_have_count(1)
    shot(page, "11-watermark")
    no_problems(page)


def test_the_console_works_by_keyboard_alone(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/console/")
    # The first Tab reaches the skip link; Enter moves focus into the content.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#content")).to_be_focused()
    # Back up to the navigation and into the accounts page, then sort by risk, all by keys.
    page.goto(f"{gateway.url}/console/")
    for _ in range(4):  # skip link, brand, Overview, Accounts
        page.keyboard.press("Tab")
    expect(page.locator("nav[aria-label=Console] a", has_text="Accounts")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Accounts")
    page.locator("#f-q").focus()
    page.keyboard.type("trial-")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{gateway.url}/console/accounts?q=trial-&verdict=&tier=&min_risk=&sort=risk&dir=desc")
    expect(page.locator("table.accounts tbody tr")).to_have_count(len(HYDRA))
    header = page.locator("thead a", has_text="Calls")
    header.focus()
    shot(page, "13-keyboard-focus")
    page.keyboard.press("Enter")
    expect(page.locator("th[aria-sort]")).to_contain_text("Calls")
    no_problems(page)
