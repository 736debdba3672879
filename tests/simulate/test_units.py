"""The building blocks: limits, time formatting, ids, replies, benchmarks, scheduling, sweeps."""

from __future__ import annotations

import random

from distillguard.config import LimitsConfig
from distillguard.simulate import benchmarks, content
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import MINUTE_US, US, Rfc3339, local_weekday
from distillguard.simulate.config import SimulationConfig
from distillguard.simulate.encode import event_id
from distillguard.simulate.populations.base import schedule
from distillguard.simulate.populations.hydra import campaign_sizes
from distillguard.simulate.ratelimit import TIERS, AccountLimiter
from distillguard.simulate.responses import synthesize
from distillguard.timefmt import epoch_us, rfc3339_from_epoch_us
from limits import parse_many


def test_tiers_match_the_gateway_defaults() -> None:
    gateway = LimitsConfig().tiers
    for tier, windows in TIERS.items():
        items = [i for spec in gateway[tier].account.requests for i in parse_many(spec)]
        assert [(w.amount, w.span_us // US) for w in windows] == [(i.amount, i.get_expiry()) for i in items]


def test_limiter_admits_the_limit_then_refuses_until_retry_after() -> None:
    limiter = AccountLimiter("free")
    t0 = 10 * MINUTE_US
    assert all(limiter.hit(t0 + i) is None for i in range(20))
    refusal = limiter.hit(t0 + 20)
    assert refusal is not None
    description, retry_after_ms = refusal
    assert description == "account requests: 20 per minute"
    assert 0 < retry_after_ms <= 120_000
    assert limiter.hit(t0 + 20 + retry_after_ms * 1000 + 1000) is None


def test_limiter_daily_cap() -> None:
    limiter = AccountLimiter("free")
    admitted = sum(limiter.hit(i * 10 * US) is None for i in range(1000))  # one call per 10 s for ~3 hours
    assert admitted == 500
    refusal = limiter.hit(1000 * 10 * US)
    assert refusal is not None and refusal[0] == "account requests: 500 per day"


def test_rfc3339_matches_the_projects_formatter() -> None:
    fmt = Rfc3339()
    rng = random.Random(0)
    base = epoch_us(SimulationConfig().start)
    for _ in range(2000):
        ts = base + rng.randrange(0, 30 * 24 * 3600 * US)
        assert fmt(ts) == rfc3339_from_epoch_us(ts)


def test_local_weekday() -> None:
    sunday_noon = epoch_us(SimulationConfig().start) + 12 * 3600 * US  # 2026-11-01 is a Sunday
    assert local_weekday(sunday_noon, 0) == 6
    assert local_weekday(sunday_noon, 13) == 0  # already Monday in UTC+13


def test_event_ids_are_unique_and_sort_by_time() -> None:
    ids = {event_id(1_000_000, account, seq) for account in range(300) for seq in range(300)}
    assert len(ids) == 90_000
    assert event_id(1, 5, 5) < event_id(2, 0, 0)


def test_replies_fit_max_tokens_and_labels() -> None:
    long = synthesize("cot", "en", 3000, 500, seed=1)
    assert long.finish_reason == "length" and long.completion_tokens == 500
    short = synthesize("chat", "de", 80, 500, seed=2)
    assert short.finish_reason == "stop" and short.text is not None
    assert abs(short.completion_tokens - len(short.text.encode()) // 4) <= 1
    label = synthesize("label", "en", 1, 1, seed=3, labels=("yes", "no"))
    assert label.text in ("yes", "no") and label.completion_tokens == 1
    assert synthesize("chat", "zh", 200, None, seed=9) == synthesize("chat", "zh", 200, None, seed=9)
    assert synthesize("chat", "en", 200, None, seed=9).text != synthesize("chat", "en", 200, None, seed=10).text
    json_reply = synthesize("json", "en", 100, 200, seed=4)
    assert json_reply.text is not None and json_reply.text.startswith("{")


def test_benchmarks_are_fixed_public_test_sets() -> None:
    sizes = {name: len(benchmarks.procedural(name).items) for name in benchmarks.NAMES}
    assert sizes["gsm8k"] == 1319 and sizes["humaneval"] == 164 and sizes["mbpp"] == 399
    benchmarks.procedural.cache_clear()
    again = benchmarks.procedural("gsm8k")
    assert again.items == benchmarks.procedural("gsm8k").items
    assert len(set(again.items)) > 1300
    # Train and test splits are different draws (a few short problems coincide by chance, as in real data sets).
    assert len(set(again.items) & set(benchmarks.procedural("gsm8k", "train").items)) < 0.02 * len(again.items)


def test_schedule_merges_overlapping_sessions_in_time_order() -> None:
    def session(start: int, gaps: list[int]) -> tuple[int, object]:
        times = [start]
        for gap in gaps:
            times.append(times[-1] + gap)
        calls = (Call(ts_us=t, body={"model": "m"}, key_id="k", ip="1.2.3.4", user_agent="ua") for t in times)
        return start, calls

    sessions = [session(0, [100, 100, 100]), session(50, [10, 500]), session(120, []), session(900, [1])]
    merged = [c.ts_us for c in schedule(sessions)]  # type: ignore[arg-type]
    assert merged == sorted(merged)
    assert len(merged) == 4 + 3 + 1 + 2


def test_grid_sweep_items_are_distinct() -> None:
    rng = random.Random(0)
    items = [content.grid_question(rng, i) for i in range(3000)]
    assert len(set(items)) == 3000


def test_campaign_sizes() -> None:
    rng = random.Random(1)
    for n in (5, 12, 40, 100, 400):
        sizes = campaign_sizes(rng, n)
        assert sum(sizes) == n
        assert all(s >= 5 for s in sizes)
    assert len(campaign_sizes(rng, 400)) >= 5
