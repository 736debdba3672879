"""Open-loop HTTP load generator: POSTs on a fixed schedule, whatever the target answers.

Run as its own process (``python bench/loadgen.py --url ... --rate 300 --duration 10``); prints one JSON object.

Request ``i`` is due at ``t0 + i / rate``. A pacer thread sleeps until each due time (nanosleep, well under a
millisecond of slack, no busy-waiting) and hands the request to the event loop, which sends it without waiting for
earlier ones to finish. Latency is measured from the *due* time, not from when the request actually left, so a
slow generator or a queue anywhere on the way counts against the target instead of being hidden (no coordinated
omission). How late the sends were is reported too (``send_lag_ms``), to show how good the schedule was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def summarize_ms(seconds: list[float]) -> dict[str, float | None]:
    values = sorted(s * 1000 for s in seconds)
    out: dict[str, float | None] = {f"p{q:g}": percentile(values, q) for q in PERCENTILES}
    out["max"] = values[-1] if values else None
    out["mean"] = sum(values) / len(values) if values else None
    return out


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_done: float = 0.0


class OpenLoop:
    def __init__(
        self, url: str, body: bytes, headers: dict[str, str], rate: float, timeout_s: float, max_connections: int
    ) -> None:
        self.url = url
        self.body = body
        self.headers = {"content-type": "application/json", **headers}
        self.rate = rate
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_connections = max_connections

    async def run(self, warmup_s: float, duration_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
            warm = Tally()
            measured = Tally()
            warm_count = round(self.rate * warmup_s)
            total = warm_count + round(self.rate * duration_s)
            tasks: set[asyncio.Task[None]] = set()
            finished = asyncio.Event()

            def fire(index: int, due: float) -> None:
                tally = warm if index < warm_count else measured
                tally.lags.append(time.perf_counter() - due)
                task = loop.create_task(self._one(session, due, tally))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            t0 = time.perf_counter() + 0.05
            pacer = threading.Thread(
                target=_pace,
                args=(loop, fire, finished, t0, self.rate, total),
                name="pacer",
                daemon=True,
            )
            pacer.start()
            await finished.wait()
            while tasks:
                await asyncio.gather(*list(tasks))
            pacer.join()
        window = duration_s
        first_due = t0 + warm_count / self.rate
        ok = sum(n for status, n in measured.statuses.items() if 200 <= status < 300)
        sent = len(measured.lags)
        return {
            "offered_rps": self.rate,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "sent": sent,
            "ok": ok,
            "ok_rps": ok / window if window else 0.0,
            "completion_span_s": max(0.0, measured.last_done - first_due),
            "non_2xx": sum(n for status, n in measured.statuses.items() if not 200 <= status < 300),
            "warmup_answered": sum(warm.statuses.values()),
            "status_counts": {str(k): v for k, v in sorted(measured.statuses.items())},
            "timeouts": measured.timeouts,
            "errors": sum(measured.errors.values()),
            "error_kinds": dict(measured.errors),
            "latency_ms": summarize_ms(measured.latencies),
            "send_lag_ms": summarize_ms(measured.lags),
        }

    async def _one(self, session: aiohttp.ClientSession, due: float, tally: Tally) -> None:
        try:
            async with session.post(self.url, data=self.body, headers=self.headers, timeout=self.timeout) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            tally.timeouts += 1
            return
        except aiohttp.ClientError as exc:
            tally.errors[type(exc).__name__] += 1
            return
        done = time.perf_counter()
        tally.last_done = max(tally.last_done, done)
        tally.statuses[status] += 1
        if 200 <= status < 300:
            tally.latencies.append(done - due)


def _pace(
    loop: asyncio.AbstractEventLoop,
    fire: Any,
    finished: asyncio.Event,
    t0: float,
    rate: float,
    total: int,
) -> None:
    """Thread body: wake at each due time and hand the request to the loop (no waiting for answers)."""
    try:
        for index in range(total):
            due = t0 + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            loop.call_soon_threadsafe(fire, index, due)
    finally:
        loop.call_soon_threadsafe(finished.set)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True, help="file holding the JSON request body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds at the same rate, not measured")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds")
    parser.add_argument("--max-connections", type=int, default=4000)
    args = parser.parse_args(argv)
    headers = {}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    with open(args.body_file, "rb") as handle:
        body = handle.read()
    # The pacer thread must get the GIL back promptly when its sleep ends.
    sys.setswitchinterval(0.0002)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a distillguard dependency
        runner = asyncio.run
    generator = OpenLoop(args.url, body, headers, args.rate, args.timeout, args.max_connections)
    result = runner(generator.run(args.warmup, args.duration))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
