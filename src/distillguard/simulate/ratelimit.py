"""Per-account request limits, applied the way the gateway applies them.

The tiers are the gateway's default tiers (``distillguard.config``; a test keeps them in step) and the algorithm
is the same sliding-window counter: the previous window's count, weighted by how much of it still overlaps the
sliding window, plus the current window's count. A refused call is not counted (as in the gateway), and the
refusal carries the ``extra`` the gateway writes: the limit's description and ``retry_after_ms``.

Only request limits at account scope are simulated; token limits would bind only for a few extreme accounts,
and key/org scopes are looser than the account scope in the default tiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from distillguard.simulate.clock import DAY_US, MINUTE_US, MS


@dataclass(frozen=True, slots=True)
class Window:
    amount: int
    span_us: int
    description: str  # as the gateway's Rule.describe(): "account requests: 600 per minute"


def _window(amount: int, unit: str) -> Window:
    span = {"minute": MINUTE_US, "day": DAY_US}[unit]
    return Window(amount, span, f"account requests: {amount} per {unit}")


TIERS: dict[str, tuple[Window, ...]] = {
    "free": (_window(20, "minute"), _window(500, "day")),
    "standard": (_window(600, "minute"), _window(50000, "day")),
    "enterprise": (_window(10000, "minute"),),
}


class _SlidingCounter:
    __slots__ = ("current", "index", "previous", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self.index = -1
        self.current = 0
        self.previous = 0

    def _roll(self, ts_us: int) -> float:
        """Advance to the window holding ``ts_us``; return how far into it we are (0..1)."""
        index, offset = divmod(ts_us, self.window.span_us)
        if index != self.index:
            self.previous = self.current if index == self.index + 1 else 0
            self.current = 0
            self.index = index
        return offset / self.window.span_us

    def weighted(self, ts_us: int) -> float:
        elapsed = self._roll(ts_us)
        return self.previous * (1.0 - elapsed) + self.current

    def retry_after_us(self, ts_us: int) -> int:
        """Time until one more call fits (the caller has just been refused)."""
        limit, span = self.window.amount, self.window.span_us
        elapsed = self._roll(ts_us)
        room = limit - 1 - self.current
        if self.previous > 0 and room >= 0:
            # The weighted previous count must fall to ``room``: it falls linearly over the rest of the window.
            needed = (1.0 - elapsed) - room / self.previous
            if needed <= 1.0 - elapsed:
                return max(1000, int(max(needed, 0.0) * span))
        # Not within this window: in the next one, the current count becomes the weighted previous count.
        fraction = 1.0 - (limit - 1) / self.current if self.current > 0 else 0.0
        return max(1000, int(((1.0 - elapsed) + max(fraction, 0.0)) * span))


class AccountLimiter:
    """The request limits of one account: ``hit`` admits a call or says which limit refused it and for how long."""

    __slots__ = ("_counters",)

    def __init__(self, tier: str) -> None:
        self._counters = tuple(_SlidingCounter(w) for w in TIERS[tier])

    def hit(self, ts_us: int) -> tuple[str, int] | None:
        """None when the call is admitted (and counted); else ``(limit description, retry_after_ms)``."""
        for counter in self._counters:
            if counter.weighted(ts_us) + 1 > counter.window.amount:
                return counter.window.description, counter.retry_after_us(ts_us) // MS
        for counter in self._counters:
            counter.current += 1
        return None
