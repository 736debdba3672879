"""``/accounts/{id}``: one account, everything a reviewer weighs; ``/events/{id}``: one stored call in full."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from distillguard.console.errors import ConsoleError, not_found
from distillguard.console.exchanges import exchange
from distillguard.console.page import Page
from distillguard.console.read.account import read_account

MAX_ID = 200


def _ident(page: Page, name: str, what: str) -> str:
    value = str(page.request.path_params[name])
    if not value or len(value) > MAX_ID:
        raise ConsoleError(400, f"Not {what}", f"{what.capitalize()} ids are 1 to {MAX_ID} characters long.")
    return value


async def account(page: Page) -> Response:
    account_id = _ident(page, "account_id", "an account")
    ctx = page.ctx

    def build() -> dict[str, Any]:
        detail = read_account(ctx.store, ctx.events, ctx.book, ctx.settings, account_id)
        if not detail.exists:
            raise not_found("account", account_id)
        from distillguard import plots
        from distillguard.console import charts

        figure = None
        if detail.history or detail.level_changes:
            figure = plots.figure_json(
                charts.account_risk(detail.history, detail.level_changes, ctx.settings.detect.thresholds)
            )
        return {"detail": detail, "risk_figure": figure}

    return page.render("account.html", **await page.threaded(build))


async def event(page: Page) -> Response:
    event_id = _ident(page, "event_id", "an event")
    ctx = page.ctx
    row = await page.threaded(ctx.events.event, event_id)
    if row is None:
        raise not_found("event", event_id)
    return page.render("event.html", ex=exchange(row, ctx.settings.events), account_id=row["account_id"])
