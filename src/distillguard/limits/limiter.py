"""Atomic multi-limit acquisition with token reservation and settlement.

Every call takes one unit from each request limit and a token reservation (prompt estimate + max_tokens) from
each token limit, all or nothing. After the call the reservation is settled against the upstream's reported usage:
unused tokens are returned to the window they were taken from, overruns are charged to the current window.

Two implementations share the window arithmetic below and the :class:`Limiter` interface the gateway uses:
:class:`RateLimiter` (in-process, ``memory://``) and :class:`~distillguard.limits.redis.RedisLimiter` (shared by
every gateway process, ``redis://``). They lay windows out the same way (clock-aligned, ``<key>/<window index>``),
so the same sequence of calls gives the same decisions and the same rate-limit headers on either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from distillguard.limits.memory import SweepingMemoryStorage
from distillguard.limits.rules import Rule, RuleSet

# (operation, seconds): how long one call to a shared storage took, for the gateway's metrics.
StorageObserver = Callable[[str, float], None]


class LimiterUnavailable(Exception):
    """The shared limits storage did not answer in time and the limiter fails closed."""


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
    # True when the shared storage was unavailable and the call was admitted unchecked (fail mode "open").
    fail_open: bool = False


class Limiter(Protocol):
    """What the gateway needs from a limiter, whichever storage holds the counters."""

    #: True when the counters are shared with other processes (so ``serve --workers N`` is safe).
    shared: bool
    #: False while the storage does not answer (the fail mode applies); always True in memory.
    available: bool
    observe: StorageObserver | None

    async def acquire(self, rules: RuleSet, tokens: int) -> Decision: ...

    def settle(self, reservation: Reservation, actual_tokens: int) -> None: ...

    async def drain(self) -> None:
        """Wait for the settlements under way (a shared storage settles in the background)."""

    async def state(self, rules: RuleSet) -> tuple[WindowState | None, WindowState | None]: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


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


def window_ttls(previous: int, expiry: int, now: float) -> tuple[float, float]:
    """(previous window TTL, current window TTL) at ``now``: `limits`' MemoryStorage arithmetic, shared by both
    limiters so that their headers agree."""
    previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
    return previous_ttl, (1 - ((now / expiry) % 1)) * expiry + expiry


def costs(rules: RuleSet, tokens: int) -> list[tuple[Rule, int]]:
    """Every rule with what a call takes from it, in the order rules are checked (requests, then tokens)."""
    return [(rule, 1) for rule in rules.requests] + [(rule, tokens) for rule in rules.tokens]


def too_large(rules: RuleSet, tokens: int) -> Decision | None:
    """The refusal of a call that no window could ever hold, or None (checked before any storage is touched)."""
    for rule, cost in costs(rules, tokens):
        if cost > rule.item.amount:
            return Decision(False, None, WindowState(rule, rule.item.amount, 0.0), denied_by=rule, too_large=True)
    return None


@dataclass(frozen=True, slots=True)
class Window:
    """One rule's sliding window as read: the counts that decide a call and fill its headers."""

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


def tightest(states: Iterable[tuple[Rule, tuple[int, float]]]) -> WindowState | None:
    """The rule with the least room left (the one a client is closest to hitting)."""
    best: WindowState | None = None
    for rule, (remaining, reset) in states:
        if best is None or (remaining, -reset) < (best.remaining, -best.reset_s):
            best = WindowState(rule, remaining, reset)
    return best


def first_refusal(checked: list[tuple[Rule, int, Window]]) -> int | None:
    """Index of the first rule (requests before tokens) that has no room for its cost, or None."""
    return next((i for i, (rule, cost, window) in enumerate(checked) if window.used + cost > rule.item.amount), None)


def decide(checked: list[tuple[Rule, int, Window]], denied: int | None, tokens: int) -> Decision:
    """The decision from every rule's window as read before the call; ``denied``: index of the refusing rule.

    An admitted call reports its windows after taking its cost; a refused one reports them as they are (it took
    nothing) and when the refusing rule will have room for it.
    """
    if denied is not None:
        rule, cost, window = checked[denied]
        return Decision(
            False,
            tightest((r, w.after(0)) for r, _, w in checked if r.kind == "requests"),
            tightest((r, w.after(0)) for r, _, w in checked if r.kind == "tokens"),
            denied_by=rule,
            retry_after_s=max(window.wait_for(cost), 0.001),
        )
    taken = tuple((r, w.current_key) for r, _, w in checked if r.kind == "tokens")
    return Decision(
        True,
        tightest((r, w.after(c)) for r, c, w in checked if r.kind == "requests"),
        tightest((r, w.after(c)) for r, c, w in checked if r.kind == "tokens"),
        reservation=Reservation(tokens, taken),
    )


class RateLimiter:
    """Sliding-window-counter limits in this process (``memory://``).

    The algorithm is `limits`' SlidingWindowCounterRateLimiter (weighted previous window + current window), run on
    the storage's primitives so that each rule's window is read once per call: the same read decides the call,
    fills the rate-limit headers and, on refusal, the retry delay. Nothing between the reads and the increments
    yields to the event loop, so N concurrent calls against a limit of L admit exactly L.
    """

    shared = False
    available = True

    def __init__(self) -> None:
        self.storage = SweepingMemoryStorage()
        self.observe: StorageObserver | None = None

    async def acquire(self, rules: RuleSet, tokens: int) -> Decision:
        """Take one request and ``tokens`` tokens from every rule, or nothing at all."""
        return self.acquire_now(rules, tokens)

    def acquire_now(self, rules: RuleSet, tokens: int) -> Decision:
        refused = too_large(rules, tokens)
        if refused is not None:
            return refused
        now = time.time()
        checked = [(rule, cost, self._read(rule, now)) for rule, cost in costs(rules, tokens)]
        denied = first_refusal(checked)
        if denied is None:
            incr = self.storage.incr
            for rule, cost, window in checked:
                incr(window.current_key, 2 * rule.item.get_expiry(), cost)
        return decide(checked, denied, tokens)

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Correct a reservation to the tokens actually used."""
        delta = actual_tokens - reservation.tokens
        if delta == 0:
            return
        for rule, window_key in reservation.taken:
            if delta < 0:
                self.storage.decr(window_key, -delta)
            else:
                self.storage.incr(self._read(rule, time.time()).current_key, 2 * rule.item.get_expiry(), delta)

    async def state(self, rules: RuleSet) -> tuple[WindowState | None, WindowState | None]:
        """The tightest request and token windows without taking anything (for headers on refusals)."""
        now = time.time()
        return (
            tightest((r, self._read(r, now).after(0)) for r in rules.requests),
            tightest((r, self._read(r, now).after(0)) for r in rules.tokens),
        )

    async def drain(self) -> None:
        """Settlements are immediate in memory."""

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.storage.close()

    def _read(self, rule: Rule, now: float) -> Window:
        expiry = rule.item.get_expiry()
        previous_key, current_key = self.storage.sliding_window_keys(rule.storage_key, expiry, now)
        previous, current = self.storage.get(previous_key), self.storage.get(current_key)
        previous_ttl, current_ttl = window_ttls(previous, expiry, now)
        return Window(rule.item.amount, expiry, previous, previous_ttl, current, current_ttl, current_key)
