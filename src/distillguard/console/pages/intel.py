"""``/intel``: what partners sent (by partner and object type, their newest indicators) and what it matched here."""

from __future__ import annotations

from starlette.responses import Response

from distillguard.console.page import Page
from distillguard.console.read.intel import read_intel

SHOWN = 100


def _own_identity(page: Page) -> str | None:
    """This deployment's STIX identity, if it has a signing key (the console never makes one)."""
    from distillguard.intel.member import load_signer, signing_key_path

    config, data_dir = page.ctx.settings.intel, page.ctx.settings.data_dir
    if not signing_key_path(config, data_dir).is_file():
        return None
    return load_signer(config, data_dir).identity_id


async def intel(page: Page) -> Response:
    ctx = page.ctx
    own = await page.threaded(_own_identity, page)
    view = await page.threaded(read_intel, ctx.engine, ctx.settings.intel, own, SHOWN)
    return page.render("intel.html", view=view, intel=ctx.settings.intel, shown=SHOWN)
