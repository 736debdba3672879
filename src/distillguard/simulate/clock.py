"""Time: units, activity rhythms (hour-of-day profiles in an account's local time) and fast RFC 3339 formatting.

Rhythms are the main temporal signal a detector can use, so they are deliberately not clean: benign populations
have diurnal and weekly shapes whose strength varies per account, business apps run 24/7 with a soft daily swell,
and attackers range from flat (``slow_and_low``) to operator-hours (scripts restarted in the morning).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

US = 1_000_000
MS = 1_000
MINUTE_US = 60 * US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Hour-of-day weights in LOCAL time (index 0 = 00:00-01:00). Shapes, not rates: they are normalised when used.
EVENING = (
    0.35, 0.2, 0.1, 0.06, 0.05, 0.06, 0.15, 0.35, 0.55, 0.65, 0.7, 0.75,
    0.8, 0.75, 0.7, 0.7, 0.75, 0.85, 1.0, 1.1, 1.15, 1.1, 0.9, 0.6,
)  # fmt: skip
OFFICE = (
    0.03, 0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.2, 0.6, 1.0, 1.1, 1.05,
    0.7, 0.9, 1.1, 1.1, 1.0, 0.8, 0.45, 0.3, 0.25, 0.2, 0.12, 0.06,
)  # fmt: skip
# What a customer-facing app sees: never zero (other time zones, night owls), a broad daytime swell.
CUSTOMER = (
    0.45, 0.35, 0.3, 0.28, 0.3, 0.38, 0.55, 0.75, 0.95, 1.05, 1.1, 1.1,
    1.1, 1.1, 1.05, 1.05, 1.05, 1.0, 0.95, 0.9, 0.85, 0.75, 0.65, 0.55,
)  # fmt: skip
FLAT = (1.0,) * 24


def blend(profile: Sequence[float], strength: float) -> tuple[float, ...]:
    """Mix a profile with a flat one: ``strength`` 1 keeps the shape, 0 flattens it (per-account variety)."""
    mean = sum(profile) / len(profile)
    return tuple(strength * w + (1.0 - strength) * mean for w in profile)


def utc_weights(local_profile: Sequence[float], tz_offset_h: int) -> list[float]:
    """Re-index a local-time profile by UTC hour: UTC hour h is local hour h + offset."""
    return [local_profile[(h + tz_offset_h) % 24] for h in range(24)]


def cumulative(weights: Sequence[float]) -> list[float]:
    total = 0.0
    out = []
    for w in weights:
        total += w
        out.append(total)
    return out


_HOURS = list(range(24))


def times_in_day(rng: random.Random, day_start_us: int, n: int, cum_weights: Sequence[float]) -> list[int]:
    """``n`` sorted arrival times within one UTC day, distributed by hour according to ``cum_weights``."""
    if n <= 0:
        return []
    hours = rng.choices(_HOURS, cum_weights=cum_weights, k=n)
    rand = rng.random
    times = [day_start_us + h * HOUR_US + int(rand() * HOUR_US) for h in hours]
    times.sort()
    return times


def day_starts(start_us: int, end_us: int) -> Iterator[int]:
    """UTC midnights of every day that overlaps [start, end)."""
    day = start_us - start_us % DAY_US
    while day < end_us:
        yield day
        day += DAY_US


def local_weekday(ts_us: int, tz_offset_h: int) -> int:
    """Monday = 0 ... Sunday = 6, in the account's local time (1970-01-01 was a Thursday)."""
    return ((ts_us + tz_offset_h * HOUR_US) // DAY_US + 3) % 7


def is_weekend(ts_us: int, tz_offset_h: int) -> bool:
    return local_weekday(ts_us, tz_offset_h) >= 5


class Rfc3339:
    """``2026-11-24T21:03:04.123456Z`` from epoch microseconds, with the date part cached per day.

    ``datetime.fromtimestamp`` + ``isoformat`` costs a few microseconds per call; with a million events that is
    seconds, so the date string is computed once per day and the time of day by integer arithmetic.
    """

    __slots__ = ("_day", "_prefix")

    def __init__(self) -> None:
        self._day = -1
        self._prefix = ""

    def __call__(self, ts_us: int) -> str:
        day, rest = divmod(ts_us, DAY_US)
        if day != self._day:
            self._day = day
            self._prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        secs, micros = divmod(rest, US)
        hours, secs = divmod(secs, 3600)
        minutes, secs = divmod(secs, 60)
        return f"{self._prefix}{hours:02d}:{minutes:02d}:{secs:02d}.{micros:06d}Z"
