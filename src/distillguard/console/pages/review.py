"""``/review``: the cases waiting for a reviewer; ``/review/{case}``: one case and the forms to confirm, reverse or
escalate it. Decisions go through the case book exactly as the admin API's do (same checks, same audit entries)
and, in a gateway, apply in its process at once; other processes pick them up at their next sync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, get_args

from starlette.responses import Response

from distillguard.config import Level
from distillguard.console.errors import ConsoleError
from distillguard.console.page import Page
from distillguard.console.read.review import read_case, read_queue
from distillguard.console.render import path_segment
from distillguard.respond.book import Case, CaseError, CaseStatus

log = logging.getLogger(__name__)

PAGE = 25
MAX_OFFSET = 1_000_000
MAX_REASON = 10_000
# Levels a reviewer may confirm a case at (a reversal is what gives "allow").
CONFIRM_LEVELS: tuple[Level, ...] = ("watch", "throttle", "degrade", "challenge", "block")
ACTIONS = {"confirm": "confirmed", "reverse": "reversed", "escalate": "escalated"}
QUEUES = ("waiting", *get_args(CaseStatus))


async def queue(page: Page) -> Response:
    status = page.choice("status", QUEUES, "waiting") or "waiting"
    offset = page.integer("offset", 0, MAX_OFFSET, 0)
    view = await page.threaded(read_queue, page.ctx.book, status, offset, PAGE)
    return page.render("review.html", queue=view, queues=QUEUES, page_size=PAGE)


async def _case_page(page: Page, case_id: str, status: int = 200, **context: Any) -> Response:
    try:
        ctx = page.ctx
        view = await page.threaded(
            read_case, ctx.book, ctx.engine, ctx.events, ctx.settings.console.evidence_calls, case_id
        )
    except CaseError as exc:
        raise ConsoleError(exc.status, "No such case", exc.message) from None
    done = page.choice("done", tuple(ACTIONS.values()))
    return page.render(
        "case.html",
        status,
        view=view,
        levels=CONFIRM_LEVELS,
        done=done,
        sync_s=page.ctx.settings.respond.sync_interval_s,
        **{"error": None, "form": {}, **context},
    )


async def case(page: Page) -> Response:
    return await _case_page(page, str(page.request.path_params["case_id"])[:64])


async def decide(page: Page) -> Response:
    case_id = str(page.request.path_params["case_id"])[:64]
    action = str(page.request.path_params["action"])
    if action not in ACTIONS:
        raise ConsoleError(404, "No such action", f"A case can be confirmed, reversed or escalated, not {action!r}.")
    form = {"action": action, "reason": (page.form or {}).get("reason") or "", "level": (page.form or {}).get("level")}
    try:
        reason = page.field("reason", MAX_REASON)
        assert reason is not None
        asked = page.field("level", 16, required=False)
        level = next((lv for lv in CONFIRM_LEVELS if lv == asked), None)
        if asked is not None and (action != "confirm" or level is None):
            raise ConsoleError(400, "Bad level", f"A case is confirmed at one of {', '.join(CONFIRM_LEVELS)}.")
    except ConsoleError as exc:
        return await _case_page(page, case_id, exc.status, error=exc.detail, form=form)
    book, reviewer, on_decided = page.ctx.book, page.session.name, page.ctx.on_decided

    decisions: dict[str, Callable[[str, str, str], Case]] = {
        "confirm": partial(book.confirm, level=level),
        "reverse": book.reverse,
        "escalate": book.escalate,
    }

    def act() -> list[str]:
        decided = decisions[action](case_id, reviewer, reason)
        if on_decided is not None and action != "escalate":
            on_decided(decided.members)  # applied in this process now; other processes at their next sync
        return decided.members

    try:
        members = await page.threaded(act)
    except CaseError as exc:
        if exc.status == 404:
            raise ConsoleError(404, "No such case", exc.message) from None
        return await _case_page(page, case_id, exc.status, error=exc.message, form=form)
    log.info(
        "case reviewed in the console",
        extra={"case_id": case_id, "action": action, "reviewer": reviewer, "members": len(members)},
    )
    return page.redirect(f"/review/{path_segment(case_id)}", done=ACTIONS[action])
