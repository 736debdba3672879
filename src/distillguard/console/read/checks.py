"""One recorded watermark or provenance check by its id (the list comes from distillguard.watermark.checks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from distillguard.store.schema import checks
from distillguard.timefmt import as_utc


def find_check(engine: Engine, check_id: str) -> dict[str, Any] | None:
    """The check's row (``at`` as an aware UTC datetime), or None."""
    with engine.connect() as conn:
        row = conn.execute(select(checks).where(checks.c.check_id == check_id)).mappings().first()
    if row is None:
        return None
    return {**row, "at": as_utc(row["at"])}
