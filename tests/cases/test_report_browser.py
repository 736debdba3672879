"""The report opened from disk in headless Debian chromium, with the network unreachable: the plots draw, nothing
is fetched, no script fails. A screenshot is kept as a test artefact."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.cases.export import export_pack
from distillguard.cases.gather import Subject
from tests.cases.conftest import CLUSTER, Deployment

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots for a human to look at (git ignores the folder).
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_the_report_draws_its_plots_offline(deployment: Deployment, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        from tests.conftest import unavailable
        from tests.support.servers import ServerUnavailable

        unavailable(ServerUnavailable(f"{CHROMIUM} is not installed (make test installs Debian's chromium)"))
    from playwright.sync_api import sync_playwright

    pack = export_pack(deployment.settings, deployment.store, Subject("campaign", CLUSTER), tmp_path / "p").directory
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
            page = context.new_page()
            problems: list[str] = []
            fetched: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: fetched.append(r.url))
            page.goto((pack / "report.html").as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3")
            drawn = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => e.id)")
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / "case-report.png"), full_page=True)
        finally:
            browser.close()
    assert sorted(drawn) == ["plot-graph", "plot-risk", "plot-traffic"]
    assert problems == []
    assert [u for u in fetched if not u.startswith("file://")] == []
