"""What a TAXII GET (or DELETE) selects: ``added_after``, the ``match[...]`` filters, ``limit`` and ``next``.

``next`` is an opaque cursor: the date_added of the last object served. date_added is strictly increasing within
a collection (see schema.py), so "after the cursor" neither repeats nor skips an object, whatever was added or
deleted between two pages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from distillguard.intel.hub.errors import bad_request
from distillguard.intel.hub.stamps import parse_stamp

VERSION_KEYWORDS = frozenset({"first", "last", "all"})
_CURSOR_PREFIX = "c1:"

# The parameters each endpoint takes (TAXII 2.1, sections 5.3 to 5.8).
OBJECTS = frozenset(
    {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"}
)
ONE_OBJECT = frozenset({"added_after", "limit", "next", "match[version]", "match[spec_version]"})
VERSIONS = frozenset({"added_after", "limit", "next", "match[spec_version]"})
DELETE = frozenset({"match[version]", "match[spec_version]"})


@dataclass(frozen=True, slots=True)
class Query:
    limit: int
    added_after_us: int | None = None
    cursor_us: int | None = None
    types: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    # "first", "last", "all", and/or exact versions (microseconds): a row matching any of them is selected.
    version_keywords: frozenset[str] = frozenset({"last"})
    version_stamps: tuple[int, ...] = ()
    spec_versions: tuple[str, ...] = ()

    @property
    def after_us(self) -> int | None:
        """Serve objects added strictly after this moment (the later of ``added_after`` and the cursor)."""
        bounds = [b for b in (self.added_after_us, self.cursor_us) if b is not None]
        return max(bounds) if bounds else None

    @property
    def all_versions(self) -> bool:
        return "all" in self.version_keywords


def encode_cursor(date_added_us: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{date_added_us}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith(_CURSOR_PREFIX):
            return int(text.removeprefix(_CURSOR_PREFIX))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise bad_request(f"`next` {token[:40]!r} is not a token this hub gave out: start again without it.")


def _values(raw: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated values of a parameter (repeated parameters add up), without blanks or repeats."""
    out: dict[str, None] = {}
    for item in raw:
        for value in item.split(","):
            if value.strip():
                out[value.strip()] = None
    return tuple(out)


def _stamp(name: str, value: str) -> int:
    try:
        return parse_stamp(value)
    except ValueError as exc:
        raise bad_request(f"`{name}`: {exc}.") from None


def _limit(raw: str, max_page: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"`limit` must be a positive integer, got {raw[:40]!r}.") from None
    if value < 1:
        raise bad_request(f"`limit` must be a positive integer, got {value}.")
    # A larger limit is not an error: the server serves at most its own page size (TAXII 2.1, section 3.4.1).
    return min(value, max_page)


def parse_query(
    params: Mapping[str, list[str]], allowed: frozenset[str], max_page: int, default_version: str = "last"
) -> Query:
    """The query of a request's parameters (``{name: [values]}``), for an endpoint taking ``allowed``.

    A ``match[...]`` filter the endpoint does not take is refused (ignoring it would serve more than was asked
    for); other unknown parameters are ignored.
    """
    for name in params:
        if name.startswith("match[") and name not in allowed:
            supported = ", ".join(sorted(a for a in allowed if a.startswith("match["))) or "none"
            raise bad_request(f"`{name}` is not a filter of this endpoint (supported: {supported}).")

    def values(name: str) -> tuple[str, ...]:
        return _values(params.get(name, [])) if name in allowed else ()

    added_after = values("added_after")
    if len(added_after) > 1:
        raise bad_request("`added_after` takes one timestamp.")
    limit = values("limit")
    cursor = values("next")
    versions = values("match[version]") or (default_version,)
    return Query(
        limit=_limit(limit[-1], max_page) if limit else max_page,
        added_after_us=_stamp("added_after", added_after[0]) if added_after else None,
        cursor_us=decode_cursor(cursor[-1]) if cursor else None,
        types=values("match[type]"),
        ids=values("match[id]"),
        version_keywords=frozenset(v for v in versions if v in VERSION_KEYWORDS),
        version_stamps=tuple(_stamp("match[version]", v) for v in versions if v not in VERSION_KEYWORDS),
        spec_versions=values("match[spec_version]"),
    )
