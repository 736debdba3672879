"""``/campaigns``: the campaigns the clustering found; ``/campaigns/{id}``: one of them, its graph with the evidence
on every link, its volume, what it targets, its members and its case."""

from __future__ import annotations

from starlette.responses import Response

from distillguard.console.errors import ConsoleError, not_found
from distillguard.console.page import Page
from distillguard.console.read.campaigns import list_campaigns, read_campaign
from distillguard.respond.policy import LEVELS

PAGE = 50
MAX_OFFSET = 1_000_000
MAX_ID = 32
# Links listed in the campaign page's table (the strongest); the graph shows them all.
LINKS_SHOWN = 200


async def campaigns(page: Page) -> Response:
    verdict = page.choice("verdict", LEVELS)
    offset = page.integer("offset", 0, MAX_OFFSET, 0)
    found = await page.threaded(list_campaigns, page.ctx.engine, verdict, offset, PAGE + 1)
    return page.render(
        "campaigns.html",
        campaigns=found[:PAGE],
        verdict=verdict,
        offset=offset,
        has_next=len(found) > PAGE,
        page_size=PAGE,
    )


async def campaign(page: Page) -> Response:
    cluster_id = str(page.request.path_params["cluster_id"])
    if not cluster_id or len(cluster_id) > MAX_ID:
        raise ConsoleError(400, "Not a campaign", f"Campaign ids (cluster ids) are 1 to {MAX_ID} characters long.")
    ctx = page.ctx

    def build() -> Response:
        detail = read_campaign(ctx.engine, ctx.events, ctx.book, cluster_id)
        if detail is None:
            raise not_found("campaign", cluster_id)
        key = (cluster_id, detail.summary.found_at.isoformat())
        figure = ctx.graphs.get(key)
        if figure is None:
            from distillguard import plots

            members = [
                {"account_id": m.account_id, "verdict": m.verdict, "link_strength": m.link_strength}
                for m in detail.members
            ]
            figure = plots.figure_json(plots.campaign_graph(members, detail.links, title=f"Campaign {cluster_id}"))
            ctx.graphs.put(key, figure)
        # Rendered here too, off the event loop: a big campaign's page takes tens of milliseconds of template work.
        return page.render("campaign.html", detail=detail, graph=figure, links_shown=LINKS_SHOWN)

    return await page.threaded(build)
