"""Atomic multi-limit acquisition with token reservation and settlement.

Every call takes one unit from each request limit and a token reservation (prompt estimate + max_tokens) from
each token limit, all or nothing. Within one process the acquisition runs without yielding to the event loop,
so N concurrent calls against a limit of L admit exactly L. After the call the reservation is settled against
the upstream's reported usage: unused tokens are returned to the window they were taken from, overruns are
charged to the current window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from limits.storage import Storage, storage_from_string
from limits.storage.base import SlidingWindowCounterSupport

from distillguard.limits.memory import SweepingMemoryStorage
from distillguard.limits.rules import Rule, RuleSet


@dataclass(frozen=True, slots=True)
class WindowState:
    """Where one rule stands after a call: what the OpenAI rate-limit headers report."""

    rule: Rule
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Reservation:
    tokens: int
    # (rule, storage key of the window the tokens were taken from)
    taken: tuple[tuple[Rule, str], ...]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    requests: WindowState | None
    tokens: WindowState | None
    reservation: Reservation | None = None
    denied_by: Rule | None = None
    retry_after_s: float | None = None
    # True when the call can never pass (it asks for more tokens than the limit holds).
    too_large: bool = False


def seconds_until_available(
    previous: int, previous_ttl: float, current: int, current_ttl: float, expiry: float, limit: int, cost: int
) -> float:
    """How long until ``cost`` more fits under a sliding-window counter holding the given counts.

    The weighted count is ``previous * previous_ttl / expiry + current``; ``previous_ttl`` falls at one per
    second, and ``current`` becomes the previous window when ``current_ttl - expiry`` seconds are left.
    """
    room = limit - cost
    if room < 0:
        return math.inf
    if current <= room:
        if previous == 0:
            return 0.0
        return max(0.0, previous_ttl - (room - current) * expiry / previous)
    # Wait for the current window to close, then for its weight to decay enough.
    until_roll = max(0.0, current_ttl - expiry)
    return until_roll + max(0.0, expiry - room * expiry / current)


class RateLimiter:
    """Sliding-window-counter limits on a `limits` storage chosen by URI (``memory://``, ``redis://``...).

    The algorithm is the library's SlidingWindowCounterRateLimiter (weighted previous window + current window),
    run on the storage's primitives so that each rule's window is read once per call: the same read decides the
    call, fills the rate-limit headers and, on refusal, the retry delay.
    """

    def __init__(self, storage_uri: str = "memory://") -> None:
        if storage_uri.startswith("memory://"):
            storage: object = SweepingMemoryStorage()
        else:
            storage = storage_from_string(storage_uri)
        if not isinstance(storage, Storage) or not isinstance(storage, SlidingWindowCounterSupport):
            raise ValueError(f"{storage_uri!r} is not a synchronous storage with sliding-window support")
        self.storage: Storage = storage
        self._windows: SlidingWindowCounterSupport = storage

    def acquire(self, rules: RuleSet, tokens: int) -> Decision:
        """Take one request and ``tokens`` tokens from every rule, or nothing at all."""
        now = time.time()
        checked: list[tuple[Rule, int, _Window]] = []
        for group, cost in ((rules.requests, 1), (rules.tokens, tokens)):
            for rule in group:
                if cost > rule.item.amount:
                    return Decision(
                        False, None, WindowState(rule, rule.item.amount, 0.0), denied_by=rule, too_large=True
                    )
                window = self._read(rule, now)
                if window.used + cost > rule.item.amount:
                    return self._denied(rules, rule, window, cost)
                checked.append((rule, cost, window))
        # Nothing above yielded to the event loop, so no other call can have taken room since the reads.
        taken = []
        incr = self.storage.incr
        for rule, cost, window in checked:
            incr(window.current_key, 2 * rule.item.get_expiry(), cost)
            if rule.kind == "tokens":
                taken.append((rule, window.current_key))
        requests = _tightest((rule, window.after(cost)) for rule, cost, window in checked if rule.kind == "requests")
        token_state = _tightest((rule, window.after(cost)) for rule, cost, window in checked if rule.kind == "tokens")
        return Decision(True, requests, token_state, reservation=Reservation(tokens, tuple(taken)))

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Correct a reservation to the tokens actually used."""
        delta = actual_tokens - reservation.tokens
        if delta == 0:
            return
        for rule, window_key in reservation.taken:
            if delta < 0:
                self.storage.decr(window_key, -delta)  # type: ignore[attr-defined]
            else:
                self.storage.incr(self._read(rule, time.time()).current_key, 2 * rule.item.get_expiry(), delta)

    def state(self, rules: RuleSet) -> tuple[WindowState | None, WindowState | None]:
        """The tightest request and token windows without taking anything (for headers on refusals)."""
        now = time.time()
        return (
            _tightest((r, self._read(r, now).after(0)) for r in rules.requests),
            _tightest((r, self._read(r, now).after(0)) for r in rules.tokens),
        )

    def close(self) -> None:
        close = getattr(self.storage, "close", None)
        if callable(close):
            close()

    # internals --------------------------------------------------------------------------------------
    def _read(self, rule: Rule, now: float) -> _Window:
        expiry = rule.item.get_expiry()
        key = rule.storage_key
        previous, previous_ttl, current, current_ttl = self._windows.get_sliding_window(key, expiry)
        current_key = self._windows.sliding_window_keys(key, expiry, now)[1]  # type: ignore[attr-defined]
        return _Window(rule.item.amount, expiry, previous, previous_ttl, current, current_ttl, current_key)

    def _denied(self, rules: RuleSet, rule: Rule, window: _Window, cost: int) -> Decision:
        wait = window.wait_for(cost)
        requests, tokens = self.state(rules)
        return Decision(False, requests, tokens, denied_by=rule, retry_after_s=max(wait, 0.001))


@dataclass(frozen=True, slots=True)
class _Window:
    limit: int
    expiry: int
    previous: int
    previous_ttl: float
    current: int
    current_ttl: float
    current_key: str

    @property
    def used(self) -> int:
        return math.floor(self.previous * self.previous_ttl / self.expiry + self.current)

    def wait_for(self, cost: int) -> float:
        return seconds_until_available(
            self.previous, self.previous_ttl, self.current, self.current_ttl, self.expiry, self.limit, cost
        )

    def after(self, cost: int) -> tuple[int, float]:
        """(remaining, seconds to full reset) once ``cost`` more has been taken."""
        current = self.current + cost
        remaining = max(0, self.limit - math.floor(self.previous * self.previous_ttl / self.expiry + current))
        reset = seconds_until_available(
            self.previous, self.previous_ttl, current, self.current_ttl, self.expiry, self.limit, self.limit
        )
        return remaining, reset


def _tightest(states: Iterable[tuple[Rule, tuple[int, float]]]) -> WindowState | None:
    """The rule with the least room left (the one a client is closest to hitting)."""
    best: WindowState | None = None
    for rule, (remaining, reset) in states:
        if best is None or (remaining, -reset) < (best.remaining, -best.reset_s):
            best = WindowState(rule, remaining, reset)
    return best
