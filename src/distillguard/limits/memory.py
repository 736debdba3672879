"""The in-process limits storage, with a sweep that stays cheap when there are many accounts.

`limits`' MemoryStorage starts a new thread every 10 ms that scans every key to drop expired ones. Expiry
does not depend on that sweep (every read checks expiry itself); the sweep only frees memory. With 100,000
accounts it would scan millions of keys a second, so here one long-lived thread sweeps every few seconds.
"""

from __future__ import annotations

import threading

from limits.storage import MemoryStorage


class SweepingMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["dg-memory"]

    def __init__(self, uri: str | None = None, sweep_interval_s: float = 5.0) -> None:
        super().__init__(uri)
        self._sweep_interval = sweep_interval_s
        self._closed = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="distillguard-limits-sweep", daemon=True)
        self._sweeper.start()

    def _MemoryStorage__schedule_expiry(self) -> None:
        """Called by every incr/decr in the base class; the sweeper thread does this job instead."""

    def _sweep_forever(self) -> None:
        while not self._closed.wait(self._sweep_interval):
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._closed.set()
