"""Media types, STIX timestamps and ``next`` cursors: the small parsers every request goes through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distillguard.intel.hub.errors import TaxiiError
from distillguard.intel.hub.media import accepts_taxii, is_taxii_content
from distillguard.intel.hub.query import OBJECTS, decode_cursor, encode_cursor, parse_query
from distillguard.intel.hub.stamps import format_stamp, parse_stamp


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("", True),
        ("*/*", True),
        ("application/*", True),
        ("application/taxii+json;version=2.1", True),
        ("Application/TAXII+json; version=2.1", True),
        ("application/taxii+json", True),
        ('application/taxii+json; version="2.1"', True),
        ("text/html, application/taxii+json;version=2.1;q=0.2", True),
        ("application/taxii+json;version=2.1;q=0", False),
        ("application/taxii+json;version=2.0", False),
        ("application/json", False),
        ("application/stix+json;version=2.1", False),
    ],
)
def test_accept(accept: str | None, ok: bool) -> None:
    assert accepts_taxii(accept) is ok


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/taxii+json;version=2.1", True),
        ("application/taxii+json", True),
        ("application/taxii+json; charset=utf-8; version=2.1", True),
        ("application/taxii+json;version=2.0", False),
        ("application/json", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_content_type(content_type: str | None, ok: bool) -> None:
    assert is_taxii_content(content_type) is ok


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999))
def test_stamps_round_trip(micros: int) -> None:
    assert parse_stamp(format_stamp(micros)) == micros


def test_stamps_take_any_precision_and_only_utc() -> None:
    assert parse_stamp("2026-01-01T00:00:00Z") + 123_456 == parse_stamp("2026-01-01T00:00:00.123456789Z")
    assert parse_stamp("2026-01-01T00:00:00.1Z") == parse_stamp("2026-01-01T00:00:00.100000Z")
    for bad in ("2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00", "2026-02-30T00:00:00Z", "yesterday"):
        with pytest.raises(ValueError, match=r"STIX timestamp|day is out of range"):
            parse_stamp(bad)


@given(st.integers(min_value=0, max_value=2**62))
def test_cursors_round_trip(position: int) -> None:
    assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize("token", ["", "!!!", "YWJj", encode_cursor(5)[:-2]])
def test_foreign_cursors_are_refused(token: str) -> None:
    with pytest.raises(TaxiiError, match="next"):
        decode_cursor(token)


def test_query_parameters() -> None:
    query = parse_query(
        {
            "match[type]": ["indicator,campaign", "indicator"],
            "limit": ["5000"],
            "added_after": ["2026-01-01T00:00:00Z"],
        },
        OBJECTS,
        max_page=100,
    )
    assert query.types == ("indicator", "campaign") and query.limit == 100
    assert query.version_keywords == {"last"} and query.after_us == parse_stamp("2026-01-01T00:00:00Z")
    later = parse_query({"added_after": ["2026-01-01T00:00:00Z"], "next": [encode_cursor(2**61)]}, OBJECTS, 10)
    assert later.after_us == 2**61
    with pytest.raises(TaxiiError, match="one timestamp"):
        parse_query({"added_after": ["2026-01-01T00:00:00Z,2026-01-02T00:00:00Z"]}, OBJECTS, 10)
