"""Templates and the filters they use: Jinja2 with autoescaping on everything (account ids, prompts and user agents
come from clients), undefined names as errors, and figures handed to the page as JSON data, never as script."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from distillguard.respond.policy import LEVELS
from distillguard.timefmt import parse_rfc3339

# Risk shown as a level's colour band (the thresholds come from the deployment's configuration at render time).
NUMBER_SUFFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))


def _moment(value: datetime | int | float | str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_rfc3339(value)
    return datetime.fromtimestamp(value / 1e6, UTC)


def when(value: datetime | int | float | str | None, seconds: bool = True) -> str:
    """UTC wall-clock time of a datetime, an RFC 3339 string or epoch microseconds ("" for None)."""
    if value is None:
        return ""
    moment = _moment(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def iso(value: datetime | int | str | None) -> str:
    """Machine-readable time for <time datetime=...>."""
    if value is None:
        return ""
    moment = _moment(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def num(value: float | int | None) -> str:
    """Thousands separated (12,345); "" for None."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def short(value: float | int | None) -> str:
    """Compact counts for tight cells: 12.3k, 4.5M."""
    if value is None:
        return ""
    for size, suffix in NUMBER_SUFFIXES:
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{int(value)}"


def risk(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def pvalue(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.2e}"


def level_class(level: str | None) -> str:
    """The CSS class of a level's badge (unknown names fall back to a neutral one)."""
    return f"lvl-{level}" if level in LEVELS else "lvl-none"


def path_segment(value: str) -> str:
    """An id as one URL path segment (slashes and every other reserved character escaped)."""
    return quote(value, safe="")


def query(params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return ("?" + urlencode(kept)) if kept else ""


def to_json_script(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block: '<', '>' and '&' escaped so no text can close the block."""
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above for the only context it is used in (a JSON script block)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distillguard.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        iso=iso,
        duration=duration,
        num=num,
        short=short,
        risk=risk,
        pvalue=pvalue,
        level_class=level_class,
        seg=path_segment,
        json_script=to_json_script,
    )
    env.globals.update(levels=LEVELS, query=query)
    return env
