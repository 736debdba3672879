"""``/accounts``: the accounts table (sortable, filterable, paged) and ``/api/accounts``, the same page as JSON for
the table's live updates. Cells are formatted once, here, for both."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from distillguard.console.page import Page
from distillguard.console.read.accounts import (
    SORTS,
    AccountFilter,
    AccountPage,
    AccountQuery,
    AccountRow,
    AccountsReader,
)
from distillguard.console.render import level_class, num, path_segment, risk, short, when
from distillguard.respond.policy import LEVELS

# Column key, heading, and the sort it offers (None: not sortable). The account column is rendered as a link.
COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("account", "Account", None),
    ("org", "Organisation", None),
    ("tier", "Tier", None),
    ("risk", "Risk", "risk"),
    ("verdict", "Verdict", "verdict"),
    ("standing", "Standing", None),
    ("calls", "Calls", "calls"),
    ("tokens", "Tokens", "tokens"),
    ("refused", "Refused", None),
    ("last_seen", "Last call", "last_seen"),
)
MAX_OFFSET = 10_000_000


def cells(row: AccountRow) -> dict[str, dict[str, str]]:
    """The display of one row, per column: its text, the cell's CSS class, a title (tooltip), and the level class of
    a badge the text is shown in."""
    standing = row.level or ""
    if row.pending:
        standing += f" (→ {row.pending} pending review)"
    if row.confirmed:
        standing += " (confirmed)"
    t = row.traffic
    return {
        "org": {"text": row.org_id or ""},
        "tier": {"text": row.tier or ("" if row.known else "unknown account")},
        "risk": {"text": risk(row.risk), "cls": "num " + level_class(row.verdict)},
        "verdict": {"text": row.verdict or "", "badge": level_class(row.verdict) if row.verdict else ""},
        "standing": {"text": standing, "badge": level_class(row.level) if row.level else ""},
        "calls": {"text": short(t.calls), "cls": "num", "title": num(t.calls)},
        "tokens": {"text": short(t.tokens), "cls": "num", "title": num(t.tokens)},
        "refused": {"text": short(t.refused), "cls": "num", "title": num(t.refused)},
        "last_seen": {"text": when(t.last_us, seconds=False)},
    }


def _query(page: Page) -> AccountQuery:
    ctx = page.ctx
    tiers = sorted(ctx.settings.limits.tiers)
    sort = page.choice("sort", SORTS, "risk") or "risk"
    direction = page.choice("dir", ("asc", "desc"), "desc")
    return AccountQuery(
        AccountFilter(
            verdict=page.choice("verdict", LEVELS),
            tier=page.choice("tier", tiers),
            min_risk=page.number("min_risk", 0.0, 1.0),
            q=page.text("q", 200),
        ),
        sort=sort,
        desc=direction == "desc",
        offset=page.integer("offset", 0, MAX_OFFSET, 0),
        limit=ctx.settings.console.page_size,
    )


def _params(q: AccountQuery, **changes: Any) -> dict[str, Any]:
    """The page's query parameters (for links that change one of them)."""
    f = q.filter
    params: dict[str, Any] = {
        "verdict": f.verdict,
        "tier": f.tier,
        "min_risk": f"{f.min_risk:g}" if f.min_risk is not None else None,
        "q": f.q,
        "sort": q.sort,
        "dir": "desc" if q.desc else "asc",
        "offset": q.offset or None,
    }
    params.update(changes)
    return params


async def _read(page: Page, q: AccountQuery) -> AccountPage:
    ctx = page.ctx
    reader = AccountsReader(ctx.engine, ctx.events, ctx.settings.limits.default_tier)
    return await page.threaded(reader.page, q)


def _stamp() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


async def accounts(page: Page) -> Response:
    q = _query(page)
    result = await _read(page, q)
    return page.render(
        "accounts.html",
        result=result,
        rows=[(row, cells(row)) for row in result.rows],
        columns=COLUMNS,
        params=lambda **changes: _params(q, **changes),
        tiers=sorted(page.ctx.settings.limits.tiers),
        updated=_stamp(),
        refresh_ms=int(page.ctx.settings.console.refresh_interval_s * 1000),
    )


async def accounts_api(page: Page) -> Response:
    q = _query(page)
    result = await _read(page, q)
    return page.json(
        {
            "updated": _stamp(),
            "has_next": result.has_next,
            "rows": [
                {
                    "id": row.account_id,
                    "href": page.url("/accounts/" + path_segment(row.account_id)),
                    "known": row.known,
                    "cells": cells(row),
                }
                for row in result.rows
            ],
        }
    )
