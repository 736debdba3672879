"""From planned calls to events: rate limits, refusals, retries, upstream faults, latency.

Each account's calls pass through its own limiter (:mod:`distillguard.simulate.ratelimit`). How a client reacts to
a 429 is the account's :class:`RetryPolicy`, and it is what makes the 429 pattern informative without being a
giveaway: SDK clients retry a couple of times with backoff (the OpenAI SDK does by default), humans retry once,
a greedy harvester hammers immediately and ignores ``retry_after_ms``, and a paced harvester rarely sees one.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from distillguard.simulate.accounts import AccountProfile
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import MS, US
from distillguard.simulate.encode import EventEncoder, event_id, prompt_tokens
from distillguard.simulate.models import NEW, SPEED, TTFT_MS
from distillguard.simulate.ratelimit import AccountLimiter
from distillguard.simulate.responses import synthesize

# Rare faults, as a share of admitted calls: they appear in real logs and a detector must not trip on them.
UPSTREAM_ERROR = 0.0012
UPSTREAM_TIMEOUT = 0.0003
STREAM_DISCONNECT = 0.004
READ_TIMEOUT_MS = 60_000.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client reacts to a refusal (429) or an upstream fault (5xx).

    ``delay_ms``: first retry delay, multiplied by ``backoff`` per attempt, ±``jitter``; ``respect_retry_after``:
    never retry before the server's ``retry_after_ms``; ``long_block_ms``/``on_long_block``: when a refusal asks
    to wait longer than this (a daily limit), new calls are dropped (a script pausing) or delayed (a queue).
    """

    max_retries: int
    delay_ms: float
    backoff: float = 2.0
    jitter: float = 0.5
    respect_retry_after: bool = True
    long_block_ms: int = 120_000
    on_long_block: Literal["drop", "delay", "ignore"] = "delay"


SDK_BACKOFF = RetryPolicy(max_retries=2, delay_ms=800.0)  # the OpenAI SDK default: 2 retries, 0.5-8 s
APP_BACKOFF = RetryPolicy(max_retries=5, delay_ms=1000.0, backoff=2.0)
HUMAN = RetryPolicy(max_retries=1, delay_ms=8000.0, backoff=1.0, jitter=0.9, on_long_block="drop")
HAMMER = RetryPolicy(
    max_retries=3, delay_ms=500.0, backoff=1.0, jitter=0.9, respect_retry_after=False, long_block_ms=900_000,
    on_long_block="drop",
)  # fmt: skip
PACED = RetryPolicy(max_retries=1, delay_ms=5000.0, backoff=1.0, on_long_block="drop")


class AccountDriver:
    """Runs one account: merges its planned calls with pending retries, applies limits, encodes events."""

    def __init__(
        self,
        profile: AccountProfile,
        index: int,
        calls: Iterable[Call],
        policy: RetryPolicy,
        *,
        start_us: int,
        end_us: int,
        release_us: int,
        rng: random.Random,
    ) -> None:
        self.profile = profile
        self.index = index
        self.calls = calls
        self.policy = policy
        self.start_us = max(start_us, profile.created_at_us)
        self.end_us = end_us
        self.release_us = release_us
        self.rng = rng

    def events(self) -> Iterator[tuple[int, int, int, bytes]]:
        """``(ts_us, account index, sequence, JSON line)`` in time order (the global merge key comes first)."""
        profile, policy, rng = self.profile, self.policy, self.rng
        limiter = AccountLimiter(profile.tier)
        encoder = EventEncoder()
        account_id, org_id, index = profile.account_id, profile.org_id, self.index
        start_us, end_us = self.start_us, self.end_us
        # (ts, tiebreak, call, attempt): refusals waiting for their retry, calls delayed by a long block.
        pending: list[tuple[int, int, Call, int]] = []
        order = 0
        seq = 0
        blocked_until = 0
        planned = iter(self.calls)
        upcoming = next(planned, None)

        def refused(
            ts: int,
            seq: int,
            eid: str,
            call: Call,
            status: int,
            latency_ms: float,
            code: str | None,
            extra: dict[str, Any] | None = None,
            ttft_ms: float | None = None,
        ) -> tuple[int, int, int, bytes]:
            """The event of a call that was refused, failed or abandoned: no usage, no text."""
            line = encoder.encode(
                event_id=eid,
                ts_us=ts,
                account_id=account_id,
                org_id=org_id,
                call=call,
                status=status,
                usage=None,
                finish_reason=None,
                text=None,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                error_code=code,
                extra=extra,
            )
            return ts, index, seq, line

        while upcoming is not None or pending:
            if pending and (upcoming is None or pending[0][0] <= upcoming.ts_us):
                ts, _, call, attempt = heapq.heappop(pending)
            else:
                assert upcoming is not None
                call, attempt = upcoming, 0
                ts = call.ts_us
                upcoming = next(planned, None)
            if ts >= end_us:
                # Past the end of the run: stop once nothing earlier can come any more.
                if (upcoming is None or upcoming.ts_us >= end_us) and (not pending or pending[0][0] >= end_us):
                    return
                continue
            if ts < start_us:
                continue
            if attempt == 0 and ts < blocked_until:
                if policy.on_long_block == "drop":
                    continue
                if policy.on_long_block == "delay":
                    order += 1
                    heapq.heappush(pending, (blocked_until + int(rng.random() * 30 * US), order, call, 0))
                    continue

            # Every attempt is one event; a retry re-sends the same body.
            eid = event_id(ts, index, seq)
            seq += 1

            if call.reject is not None:
                yield refused(ts, seq, eid, call, 400, round(0.8 + rng.random() * 3, 2), call.reject)
                continue
            if call.model == NEW and ts < self.release_us:
                # Asking for a model before it exists: eager clients probe for it.
                yield refused(ts, seq, eid, call, 404, round(2.0 + rng.random() * 6, 1), "model_not_found")
                continue
            refusal = limiter.hit(ts)
            if refusal is not None:
                limit, retry_after_ms = refusal
                yield refused(
                    ts,
                    seq,
                    eid,
                    call,
                    429,
                    round(0.4 + rng.random() * 2.5, 2),
                    "rate_limit_exceeded",
                    {"limit": limit, "retry_after_ms": retry_after_ms},
                )
                if retry_after_ms > policy.long_block_ms and policy.on_long_block != "ignore":
                    blocked_until = max(blocked_until, ts + retry_after_ms * MS)
                if attempt < policy.max_retries:
                    order += 1
                    heapq.heappush(pending, (ts + self._delay_us(attempt, retry_after_ms), order, call, attempt + 1))
                continue

            roll = rng.random()
            if roll < UPSTREAM_ERROR + UPSTREAM_TIMEOUT:
                timeout = roll >= UPSTREAM_ERROR
                yield refused(
                    ts,
                    seq,
                    eid,
                    call,
                    504 if timeout else 502,
                    READ_TIMEOUT_MS if timeout else round(30 + rng.random() * 2000, 1),
                    "upstream_timeout" if timeout else "upstream_error",
                )
                if attempt < policy.max_retries:
                    order += 1
                    heapq.heappush(pending, (ts + self._delay_us(attempt, 0), order, call, attempt + 1))
                continue

            reply = synthesize(call.style, call.lang, call.target_tokens, call.max_tokens, call.seed, call.labels)
            p_tokens = prompt_tokens(call)
            model = call.model
            ttft = TTFT_MS.get(model, 400.0) * (0.6 + rng.random()) + p_tokens * 0.04
            latency = ttft + reply.completion_tokens / SPEED.get(model, 60.0) * 1000.0 * (0.75 + rng.random() * 0.5)
            if call.stream and rng.random() < STREAM_DISCONNECT:
                # The user closed the tab mid-stream: the gateway records the call with 499 and no usage.
                yield refused(
                    ts,
                    seq,
                    eid,
                    call,
                    499,
                    round(ttft + rng.random() * latency, 1),
                    "client_disconnected",
                    ttft_ms=round(ttft, 1),
                )
                continue
            yield (
                ts,
                index,
                seq,
                encoder.encode(
                    event_id=eid,
                    ts_us=ts,
                    account_id=account_id,
                    org_id=org_id,
                    call=call,
                    status=200,
                    usage=(p_tokens, reply.completion_tokens),
                    finish_reason=reply.finish_reason,
                    text=reply.text,
                    latency_ms=round(latency, 1),
                    ttft_ms=round(ttft, 1) if call.stream else None,
                    error_code=None,
                    extra=None,
                ),
            )

    def _delay_us(self, attempt: int, retry_after_ms: int) -> int:
        policy = self.policy
        delay = policy.delay_ms * policy.backoff**attempt
        delay *= 1.0 + policy.jitter * (2.0 * self.rng.random() - 1.0)
        if policy.respect_retry_after:
            delay = max(delay, float(retry_after_ms))
        return max(1, int(delay * MS))
