"""RFC 3339 timestamps in UTC, the one time format of events, exports and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def rfc3339(moment: datetime) -> str:
    """``2026-11-24T21:03:04.123456Z`` for an aware or naive-UTC datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def rfc3339_ms(moment: datetime) -> str:
    """``2026-11-24T21:03:04.123Z``: milliseconds, the precision every STIX consumer accepts."""
    return rfc3339(moment)[:23] + "Z"


def rfc3339_from_epoch_us(epoch_us: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch_us / 1_000_000, UTC))


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive input is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """A naive datetime (as SQLite hands them back) read as UTC; an aware one as it is."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch (naive datetimes are UTC)."""
    return (as_utc(moment) - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def utcnow() -> datetime:
    return datetime.now(UTC)
