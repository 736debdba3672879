"""STIX timestamps (``2026-11-24T21:03:04.123Z``) as integer microseconds since the epoch, and back.

STIX requires UTC with a ``Z`` and allows any number of fractional digits; digits beyond the microsecond are
dropped, which keeps ``date_added > t`` exact for every ``t`` (date_added has microsecond precision).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from distillguard.timefmt import epoch_us, from_epoch_us, rfc3339

_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?Z")


def parse_stamp(text: str) -> int:
    """Microseconds since the epoch of a STIX timestamp; ValueError if ``text`` is not one."""
    match = _STAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z): {text[:40]!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    micros = int((fraction or "").ljust(6, "0")[:6])
    return epoch_us(moment) + micros


def format_stamp(micros: int) -> str:
    """``2026-11-24T21:03:04.123456Z``: always six fractional digits, so that it parses back to ``micros``."""
    return rfc3339(from_epoch_us(micros))
