"""``/``: traffic, flagged accounts, actions taken and cases at a glance, over the last hour, day or week."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from distillguard.console.page import Page
from distillguard.console.read.accounts import AccountFilter, AccountQuery, AccountsReader
from distillguard.console.read.audit import recent_entries
from distillguard.console.read.overview import RANGES, read_overview

TOP_ACCOUNTS = 10
RECENT_ENTRIES = 12


async def overview(page: Page) -> Response:
    range_name = page.choice("range", list(RANGES), "day") or "day"
    ctx = page.ctx

    def build() -> dict[str, Any]:
        from distillguard import plots
        from distillguard.console import charts

        view = read_overview(ctx.engine, ctx.events, ctx.actions, range_name)
        reader = AccountsReader(ctx.engine, ctx.events, ctx.settings.limits.default_tier)
        top = reader.page(
            AccountQuery(AccountFilter(min_risk=ctx.settings.detect.thresholds.get("watch", 0.3)), limit=TOP_ACCOUNTS)
        )
        until_us = view.since_us + RANGES[range_name][0]
        traffic_rows = [
            {
                "at": b.start_us,
                "calls": b.calls,
                "errors": b.errors,
                "refused": b.refused,
                "prompt_tokens": b.prompt_tokens,
                "completion_tokens": b.completion_tokens,
            }
            for b in view.traffic
        ]
        figures = {
            "traffic": plots.figure_json(
                charts.over_range(plots.traffic(traffic_rows, title="Traffic"), view.since_us, until_us, view.bucket_us)
            ),
            "verdicts": plots.figure_json(charts.verdicts(view.verdicts, view.standings)),
            "actions": plots.figure_json(charts.actions(view.actions, view.since_us, until_us, view.bucket_us)),
        }
        return {
            "view": view,
            "top": top.rows,
            "recent": recent_entries(ctx.engine, RECENT_ENTRIES),
            "figures": figures,
            "ranges": list(RANGES),
        }

    return page.render("overview.html", **await page.threaded(build))
