"""What the console reads and acts with: the settings, the state store, the case book, the deployment's events
(the event log, or the store's rollups and the archive: events/logview.py), the watermark keys; built from a running
gateway (``serve``) or from a data directory (``distillguard console``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from distillguard.config import Settings
from distillguard.console.cache import LRU
from distillguard.console.read.overview import ActionTally
from distillguard.events.logview import EventLogView, open_event_log
from distillguard.respond.book import CaseBook
from distillguard.store.state import StateStore
from distillguard.watermark.keys import Watermarks

if TYPE_CHECKING:
    from distillguard.gateway.app import Gateway


@dataclass
class ConsoleContext:
    settings: Settings
    store: StateStore
    book: CaseBook
    watermarks: Watermarks
    events: EventLogView
    # Applies a review decision to the accounts it names in this process at once (the gateway's responder);
    # other processes pick it up at their next sync (``respond.sync_interval_s``).
    on_decided: Callable[[list[str]], None] | None = None
    # Campaign graphs drawn, by (cluster id, when it was found); the overview's settled action counts.
    graphs: LRU = field(default_factory=LRU)
    actions: ActionTally = field(default_factory=ActionTally)
    # What to close when the console stops (a standalone console owns its store).
    _owned: StateStore | None = field(default=None, repr=False)

    @classmethod
    def from_gateway(cls, gateway: Gateway) -> ConsoleContext:
        settings = gateway.settings
        store = gateway.store
        book = gateway.book or CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
        responder = gateway.responder
        return cls(
            settings=settings,
            store=store,
            book=book,
            watermarks=gateway.watermarks,
            events=open_event_log(settings, store.engine),
            on_decided=responder.refresh if responder is not None else None,
        )

    @classmethod
    def standalone(cls, settings: Settings) -> ConsoleContext:
        """The console of a data directory, without a gateway: decisions reach gateways at their next sync."""
        from distillguard.store import open_store

        store = open_store(settings.data_dir, settings.store_url, settings.secret)
        return cls(
            settings=settings,
            store=store,
            book=CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds),
            watermarks=Watermarks(settings.watermark, store.secret),
            events=open_event_log(settings, store.engine),
            _owned=store,
        )

    @property
    def engine(self) -> Engine:
        return self.store.engine

    @property
    def secret(self) -> bytes:
        return self.store.secret

    def close(self) -> None:
        self.events.close()
        if self._owned is not None:
            self._owned.close()
