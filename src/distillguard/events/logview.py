"""What the console and evidence packs read of a deployment's events, whichever sink keeps them: traffic rollups
(per minute, per account), an account's calls (newest first), one call by its id, and per-account traffic over
time. One interface, two deployments:

- **embedded** (``[events] sink = "sqlite"``): the gateway's event log ``DATA_DIR/events.db``, opened read-only;
  rollups kept by the sink in the log itself (:mod:`distillguard.events.sqlite_view`).
- **shared** (``sink = "redis"``): the rollups the ingest workers keep in the state store (``store_url``) as they
  archive, and calls from the Parquet archive they write (``[events] archive_dir``), read newest hour first with a
  bound on what one read may open (:mod:`distillguard.events.shared_view`).

Rows of calls are dicts keyed by the event log's column names (:data:`distillguard.events.sqlite.COLUMNS`:
``ts_us`` in epoch microseconds, ``request`` as JSON bytes or text, ``sig_*`` …), whichever deployment gave them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distillguard.events.signals import SIGNAL_COLUMNS
from distillguard.events.sqlite import COLUMNS, EVENTS_DB

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from distillguard.config import Settings

TRAFFIC_COLUMNS = ("calls", "errors", "refused", "prompt_tokens", "completion_tokens", "first_us", "last_us")
# How the accounts table can order by traffic (the key of each, as both deployments compute it).
TRAFFIC_ORDER = ("calls", "tokens", "last_seen")
# What a reviewer reads of a call (console/exchanges.py), and the stored request signals of a call.
EXCHANGE_COLUMNS = (
    "event_id", "ts_us", "endpoint", "model", "status", "prompt_tokens", "completion_tokens", "finish_reason", "text",
    "text_sha256", "latency_ms", "error_code", "client_ip", "user_agent", "key_id", "request", "extra",
)  # fmt: skip
SIGNAL_ROW_COLUMNS = ("event_id", "ts_us", "status", *(f"sig_{name}" for name in SIGNAL_COLUMNS))
ALL_COLUMNS = COLUMNS


def check_columns(columns: Sequence[str]) -> None:
    """Refuse names that are not columns of the event log (a caller's mistake, not data)."""
    unknown = set(columns) - set(ALL_COLUMNS)
    if unknown:
        raise ValueError(f"not columns of the event log: {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class Traffic:
    calls: int = 0
    errors: int = 0
    refused: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_us: int | None = None
    last_us: int | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Bucket:
    start_us: int
    calls: int
    errors: int
    refused: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One account's calls, tokens and refusals in one time bucket."""

    account_id: str
    start_us: int
    calls: int
    tokens: int
    refused: int


@dataclass
class Series:
    """Per-account traffic over time, and whether it covers the whole span asked (see :class:`Calls`)."""

    points: list[SeriesPoint] = field(default_factory=list)
    complete: bool = True


@dataclass
class Calls:
    """An account's calls, newest first, and whether the read looked at all of them it needed (False: it stopped at
    its bound in the archive before finding as many as asked, so older calls were not searched)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True


class EventLogView(ABC):
    """The read-only view of a deployment's events that the console and evidence packs use."""

    # Where the events are read from, for messages: "the event log at …", "the archive at … and the store's rollups".
    source: str

    @property
    @abstractmethod
    def available(self) -> bool:
        """Whether there are traffic rollups to read (otherwise every read answers empty)."""

    @property
    def calls_available(self) -> bool:
        """Whether an account's calls can be read (a shared deployment without an archive has only rollups)."""
        return self.available

    # traffic ----------------------------------------------------------------------------------------------------
    @abstractmethod
    def buckets(self, since_us: int, bucket_us: int) -> list[Bucket]:
        """Calls, errors, refusals and tokens per ``bucket_us`` (a multiple of a minute) from ``since_us`` on."""

    @abstractmethod
    def traffic(self, ids: Sequence[str]) -> dict[str, Traffic]:
        """The totals of each of ``ids`` that has called."""

    @abstractmethod
    def ordered(self, sort: str, desc: bool, offset: int, limit: int) -> list[str]:
        """Account ids by a traffic key of :data:`TRAFFIC_ORDER` (ties by id), one page."""

    @abstractmethod
    def sort_keys(self, sort: str, ids: Sequence[str]) -> dict[str, int]:
        """The traffic sort key of each of ``ids`` that has traffic."""

    @abstractmethod
    def count_accounts(self) -> int:
        """Accounts with at least one call."""

    @abstractmethod
    def account_ids(self) -> list[str]:
        """Every account with at least one call."""

    @abstractmethod
    def ids_containing(self, text: str, limit: int) -> list[str]:
        """Up to ``limit`` ids of accounts with calls that contain ``text`` (case-insensitive)."""

    @abstractmethod
    def series(self, ids: Sequence[str], first_us: int, last_us: int, bucket_us: int) -> Series:
        """Each account's calls, tokens and refusals per ``bucket_us`` over ``[first_us, last_us]``, in no order."""

    # calls ------------------------------------------------------------------------------------------------------
    @abstractmethod
    def calls(self, account_id: str, limit: int, columns: Sequence[str], among: Collection[str] | None = None) -> Calls:
        """The account's latest ``limit`` calls (only those whose event id is in ``among``, when given), newest first,
        with ``columns`` (names of :data:`ALL_COLUMNS`; a column an older log lacks reads None)."""

    @abstractmethod
    def event(self, event_id: str) -> dict[str, Any] | None:
        """One call by its id: ``account_id`` and :data:`EXCHANGE_COLUMNS`; None if there is none."""

    def signal_rows(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        """The stored request signals of an account's latest calls, newest first."""
        return self.calls(account_id, limit, SIGNAL_ROW_COLUMNS).rows

    def account_calls(self, account_id: str, exchanges: int, signals: int) -> tuple[Calls, Calls]:
        """An account page's calls: its latest ``exchanges`` with their text, and the signals of its latest
        ``signals`` (one read of the archive for both, where it has to search)."""
        return self.calls(account_id, exchanges, EXCHANGE_COLUMNS), self.calls(account_id, signals, SIGNAL_ROW_COLUMNS)

    @abstractmethod
    def close(self) -> None:
        """Release what the view holds open (connections); it can still be read afterwards, reopening them."""


def open_event_log(settings: Settings, engine: Engine, export: bool = False) -> EventLogView:
    """The view of this deployment's events: its event log, or (``sink = "redis"``) the state store's rollups and
    the archive. ``engine`` is the state store's; ``export``: reads for an evidence pack, which may read far more of
    the archive than a console page."""
    if settings.events.sink == "redis":
        from distillguard.events.shared_view import EXPORT_BOUND, PAGE_BOUND, SharedEventLog

        return SharedEventLog(engine, settings.events.archive_dir, EXPORT_BOUND if export else PAGE_BOUND)
    from distillguard.events.sqlite_view import SQLiteEventLogView

    return SQLiteEventLogView(settings.data_dir / EVENTS_DB)
