"""``/watermark``: the watermark and provenance checks analysts ran, and a form that scans a pasted text for this
deployment's watermark (the admin API's detector, with the deployment key and any account or campaign keys named)
and records the result as a check."""

from __future__ import annotations

import re

from starlette.responses import Response

from distillguard.console.errors import ConsoleError, not_found
from distillguard.console.page import Page
from distillguard.console.read.checks import find_check
from distillguard.console.render import path_segment
from distillguard.watermark.checks import list_checks, record_check
from distillguard.watermark.result import DEFAULT_ALPHA
from distillguard.watermark.text import detect

SHOWN = 100
MAX_TEXT = 1_000_000
MAX_IDS = 1000
MAX_ID = 200
_SPLIT = re.compile(r"[\s,]+")


def _ids(page: Page, name: str) -> list[str]:
    raw = page.field(name, MAX_IDS * (MAX_ID + 1), required=False) or ""
    ids = [i for i in _SPLIT.split(raw) if i]
    if len(ids) > MAX_IDS or any(len(i) > MAX_ID for i in ids):
        raise ConsoleError(400, f"Too many {name}", f"Name at most {MAX_IDS} {name}, each at most {MAX_ID} characters.")
    return ids


async def checks(page: Page, status: int = 200, error: str | None = None) -> Response:
    found = await page.threaded(lambda: list_checks(page.ctx.engine, limit=SHOWN))
    form = page.form or {}
    return page.render(
        "watermark.html",
        status,
        checks=found,
        error=error,
        form={k: form.get(k) or "" for k in ("text", "accounts", "clusters")},
        alpha=DEFAULT_ALPHA,
        enabled=page.ctx.settings.watermark.enabled,
    )


async def check(page: Page) -> Response:
    """POST: scan the text, record the check, show it."""
    try:
        text = page.field("text", MAX_TEXT)
        assert text is not None
        accounts, clusters = _ids(page, "accounts"), _ids(page, "clusters")
    except ConsoleError as exc:
        return await checks(page, exc.status, exc.detail)
    ctx = page.ctx
    keys = ctx.watermarks.keys_for(accounts, clusters)
    result = await page.threaded(detect, text, keys, DEFAULT_ALPHA)
    subject_kind: str | None = None
    subject_id: str | None = None
    if len(accounts) == 1 and not clusters:
        subject_kind, subject_id = "account", accounts[0]
    elif len(clusters) == 1 and not accounts:
        subject_kind, subject_id = "campaign", clusters[0]
    payload = {**result.to_json(), "accounts": accounts, "clusters": clusters, "chars": len(text)}
    check_id = await page.threaded(
        lambda: record_check(
            ctx.engine,
            kind="watermark",
            subject_kind=subject_kind,
            subject_id=subject_id,
            actor=f"reviewer:{page.session.name}",
            detected=result.detected,
            p_value=result.p_value,
            result=payload,
        )
    )
    return page.redirect(f"/watermark/{path_segment(check_id)}")


async def show(page: Page) -> Response:
    check_id = str(page.request.path_params["check_id"])[:64]
    item = await page.threaded(find_check, page.ctx.engine, check_id)
    if item is None:
        raise not_found("check", check_id)
    return page.render("check.html", item=item)
