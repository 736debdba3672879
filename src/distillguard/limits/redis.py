"""Request and token limits shared by every gateway process and replica, on Redis.

Why a Lua script and not `limits`' Redis storage: a call takes from several rules at once (key, account, org;
requests and tokens), all or nothing, and the storage's own scripts check and take one key at a time, so two
gateways could each pass the account check and then both take from an org limit that only had room for one.
Its sliding window is also anchored on each key's first hit and rolled by RENAME, where the in-memory path
uses clock-aligned windows; headers would then differ with the storage. So this module keeps `limits`' key
layout (its ``LIMITS`` prefix and the ``<key>/<window index>`` windows of its timestamped sliding-window
storages) and arithmetic (:func:`~distillguard.limits.limiter.window_ttls`), and does the check-and-take of
every rule in one script: one round trip per call, atomic across processes because Redis runs a script alone.

The script is registered once per client and run by EVALSHA (redis-py loads it again by itself after a Redis
restart). Window indices come from the gateway's clock, like in memory: replicas' clocks should be NTP-synced,
a skew of s seconds moves window edges by s seconds between replicas.

Every call is bounded by ``timeout_s`` of silence from Redis (:meth:`RedisLimiter._bounded`: a call resumed late
by a saturated event loop is not cut while other calls get answers). When Redis does not answer in time, or
refuses connections, the limiter is marked unavailable (logged once per outage) and the fail mode applies: "open"
admits the call unchecked, "closed" raises :class:`~distillguard.limits.limiter.LimiterUnavailable`. While it is
unavailable one call at a time probes Redis and the others apply the fail mode at once, so a stalled Redis does
not collect a connection per call; the first probe that gets an answer ends the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import redis.asyncio
from limits.storage import RedisStorage
from limits.storage.base import TimestampedSlidingWindow
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from distillguard.limits.limiter import (
    Decision,
    LimiterUnavailable,
    Reservation,
    StorageObserver,
    Window,
    WindowState,
    costs,
    decide,
    tightest,
    too_large,
    window_ttls,
)
from distillguard.limits.rules import Rule, RuleSet

log = logging.getLogger(__name__)
T = TypeVar("T")
FailMode = Literal["open", "closed"]
# Connections per gateway process: a script takes Redis microseconds, so 64 in flight carry tens of thousands of
# calls a second; more would only add load on Redis.
MAX_CONNECTIONS = 64

# KEYS: per rule, its previous window then its current window.
# ARGV[1]: "1" to take when every rule has room, "0" to read only. Then per rule: limit, cost, previous window TTL
# (seconds, as the client computed it), window length (seconds), TTL of a new current window (milliseconds).
# Returns {index of the first rule without room (0: none), previous count, current count, ... per rule}.
ACQUIRE = """
local take = ARGV[1] == '1'
local counts = redis.call('MGET', unpack(KEYS))
local rules = #KEYS / 2
local denied = 0
local out = {0}
for i = 1, rules do
  local a = 2 + (i - 1) * 5
  local previous = tonumber(counts[2 * i - 1]) or 0
  local current = tonumber(counts[2 * i]) or 0
  out[2 * i] = previous
  out[2 * i + 1] = current
  if denied == 0 then
    local used = math.floor(previous * tonumber(ARGV[a + 2]) / tonumber(ARGV[a + 3]) + current)
    if used + tonumber(ARGV[a + 1]) > tonumber(ARGV[a]) then
      denied = i
    end
  end
end
out[1] = denied
if take and denied == 0 then
  for i = 1, rules do
    local a = 2 + (i - 1) * 5
    if tonumber(ARGV[a + 1]) > 0 then
      redis.call('INCRBY', KEYS[2 * i], ARGV[a + 1])
      redis.call('PEXPIRE', KEYS[2 * i], ARGV[a + 4])
    end
  end
end
return out
"""

# KEYS: windows to correct. ARGV[1]: tokens to add (negative: to give back), then per key the TTL (milliseconds) of
# a window it creates. Giving back never goes below zero and never recreates a window that has expired.
SETTLE = """
local delta = tonumber(ARGV[1])
for i = 1, #KEYS do
  if delta > 0 then
    redis.call('INCRBY', KEYS[i], delta)
    redis.call('PEXPIRE', KEYS[i], ARGV[i + 1])
  elseif redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('DECRBY', KEYS[i], -delta) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
return 0
"""


class RedisLimiter:
    """Sliding-window-counter limits on Redis, exact across processes: N concurrent calls against L admit L."""

    shared = True

    def __init__(
        self, uri: str, timeout_s: float = 0.05, fail_mode: FailMode = "open", prefix: str = RedisStorage.PREFIX
    ) -> None:
        # The socket timeouts are the hard bound; _bounded applies timeout_s. No retries inside redis-py: its
        # default retries with backoff would hold a call far beyond either.
        self._hard_timeout = max(1.0, 20 * timeout_s)
        # A blocking pool: past MAX_CONNECTIONS calls wait their turn (within the timeouts) instead of failing with
        # "Too many connections", which a burst of calls plus their background settlements would otherwise meet.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            uri.removeprefix("async+"),
            max_connections=MAX_CONNECTIONS,
            timeout=self._hard_timeout,
            socket_timeout=self._hard_timeout,
            socket_connect_timeout=self._hard_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._client = redis.asyncio.Redis(connection_pool=pool)
        self._acquire = self._client.register_script(ACQUIRE)
        self._settle = self._client.register_script(SETTLE)
        self._timeout = timeout_s
        self._prefix = prefix
        self.fail_mode = fail_mode
        self.available = True
        self.observe: StorageObserver | None = None
        self._probing = False
        self._last_answer = 0.0  # perf_counter() of the last answer from Redis
        self._settlements: set[asyncio.Task[None]] = set()

    async def acquire(self, rules: RuleSet, tokens: int) -> Decision:
        """Take one request and ``tokens`` tokens from every rule, or nothing at all; one round trip."""
        refused = too_large(rules, tokens)
        if refused is not None:
            return refused
        charged = costs(rules, tokens)
        try:
            checked, denied = await self._run_acquire(charged, take=True)
        except LimiterUnavailable:
            if self.fail_mode == "closed":
                raise
            return Decision(True, None, None, reservation=Reservation(tokens, ()), fail_open=True)
        return decide(checked, denied, tokens)

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Correct a reservation to the tokens used, in the background: the answer to the client does not wait."""
        delta = actual_tokens - reservation.tokens
        if delta == 0 or not reservation.taken:
            return
        now = time.time()
        if delta < 0:  # give back to the windows the tokens were taken from
            keys = [key for _, key in reservation.taken]
        else:  # overruns are charged to the current window
            keys = [self._keys(rule, now)[1] for rule, _ in reservation.taken]
        ttls = [2 * rule.item.get_expiry() * 1000 for rule, _ in reservation.taken]
        task = asyncio.get_running_loop().create_task(self._settle_now(keys, [delta, *ttls]))
        self._settlements.add(task)
        task.add_done_callback(self._settlements.discard)

    async def state(self, rules: RuleSet) -> tuple[WindowState | None, WindowState | None]:
        """The tightest request and token windows without taking anything; (None, None) if Redis is unavailable."""
        try:
            checked, _ = await self._run_acquire([(rule, 0) for rule, _ in costs(rules, 0)], take=False)
        except LimiterUnavailable:
            return None, None
        return (
            tightest((r, w.after(0)) for r, _, w in checked if r.kind == "requests"),
            tightest((r, w.after(0)) for r, _, w in checked if r.kind == "tokens"),
        )

    async def ping(self) -> bool:
        """Whether Redis answers within the timeout with both scripts loaded (at startup, for readiness).

        Loading them here spares the first calls after a start or a Redis restart the NOSCRIPT round trip, which
        a burst of them would otherwise pay at once. A success ends an outage.
        """

        async def load() -> None:
            await self._client.script_load(ACQUIRE)
            await self._client.script_load(SETTLE)

        try:
            await self._call("ping", load)
        except LimiterUnavailable:
            return False
        return True

    async def drain(self) -> None:
        """Wait for the settlements under way (each is bounded by the timeout)."""
        while self._settlements:
            await asyncio.gather(*self._settlements, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self._client.aclose()
        await self._client.connection_pool.disconnect()

    # internals --------------------------------------------------------------------------------------
    def _keys(self, rule: Rule, now: float) -> tuple[str, str]:
        previous, current = TimestampedSlidingWindow.sliding_window_keys(rule.storage_key, rule.item.get_expiry(), now)
        return f"{self._prefix}:{previous}", f"{self._prefix}:{current}"

    async def _run_acquire(
        self, charged: list[tuple[Rule, int]], take: bool
    ) -> tuple[list[tuple[Rule, int, Window]], int | None]:
        if not charged:  # a tier without limits
            return [], None
        now = time.time()
        keys: list[str] = []
        args: list[str | int] = ["1" if take else "0"]
        # Both TTLs depend on the previous count, known only after the read: compute them for a non-empty previous
        # window here, and let window_ttls zero it below when the window turns out empty (as MemoryStorage does).
        for rule, cost in charged:
            expiry = rule.item.get_expiry()
            keys += self._keys(rule, now)
            previous_ttl, _ = window_ttls(1, expiry, now)
            args += [rule.item.amount, cost, repr(previous_ttl), expiry, 2 * expiry * 1000]
        counts = await self._call("acquire" if take else "state", lambda: self._acquire(keys, args))
        checked = []
        for i, (rule, cost) in enumerate(charged):
            previous, current = int(counts[2 * i + 1]), int(counts[2 * i + 2])
            expiry = rule.item.get_expiry()
            previous_ttl, current_ttl = window_ttls(previous, expiry, now)
            window = Window(rule.item.amount, expiry, previous, previous_ttl, current, current_ttl, keys[2 * i + 1])
            checked.append((rule, cost, window))
        denied = int(counts[0])
        return checked, (denied - 1 if denied else None)

    async def _settle_now(self, keys: list[str], args: list[int]) -> None:
        # Lost in an outage (logged once already): the windows keep the reservation as it was taken.
        with contextlib.suppress(LimiterUnavailable):
            await self._call("settle", lambda: self._settle(keys, args))

    async def _call(self, operation: str, command: Callable[[], Awaitable[T]]) -> T:
        """Run one command within the timeout; track availability; time it for the metrics."""
        probing = not self.available
        if probing:
            if self._probing:
                raise LimiterUnavailable("the rate-limit storage is unavailable")
            self._probing = True
        started = time.perf_counter()
        try:
            result = await self._bounded(command, started)
        except (RedisError, OSError, TimeoutError) as exc:
            self._timed(operation, started)
            self._mark_down(exc)
            raise LimiterUnavailable(f"the rate-limit storage did not answer: {type(exc).__name__}") from None
        finally:
            if probing:
                self._probing = False
        self._last_answer = time.perf_counter()
        self._timed(operation, started)
        if not self.available:
            self.available = True
            log.warning("rate-limit storage available again: limits enforced", extra={"operation": operation})
        return result

    async def _bounded(self, command: Callable[[], Awaitable[T]], started: float) -> T:
        """``command``'s result, given up (TimeoutError) once Redis has answered no call for ``timeout_s``.

        A saturated event loop resumes a call late although its reply came in time, and an asyncio timeout counts
        that delay too: cut at ``timeout_s`` regardless, every call of a busy gateway would get the fail mode (with
        "open", overloading a gateway would switch its limits off). So the call goes on while other calls are being
        answered or while the loop itself runs late (its timer fires late), up to a hard bound, and ends at
        ``timeout_s`` only when a punctual loop has heard nothing from Redis for that long. redis-py drops a
        connection whose command is cancelled, so no reply is ever read by the wrong call.
        """
        task = asyncio.ensure_future(command())
        hard_deadline = started + self._hard_timeout
        due = started
        while True:
            due += self._timeout
            done, _ = await asyncio.wait((task,), timeout=self._timeout)
            if done:
                result: T = task.result()
                return result
            now = time.perf_counter()
            # A timer that fired late means a busy loop, which may not have read replies that did come: no verdict.
            loop_busy = now - due > self._timeout / 2
            if (not loop_busy and self._last_answer < now - self._timeout) or now >= hard_deadline:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await task
                raise TimeoutError(f"no answer from Redis in {self._timeout * 1000:.0f} ms")

    def _timed(self, operation: str, started: float) -> None:
        if self.observe is not None:
            self.observe(operation, time.perf_counter() - started)

    def _mark_down(self, exc: BaseException) -> None:
        if self.available:
            self.available = False
            log.warning(
                "rate-limit storage unavailable: failing %s until it answers again",
                self.fail_mode,
                extra={"error": f"{type(exc).__name__}: {exc}", "fail_mode": self.fail_mode},
            )
