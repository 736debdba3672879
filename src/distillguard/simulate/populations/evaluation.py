"""``eval_run``: teams evaluating models on public benchmarks.

A run replays a benchmark's TEST set (all of it, or the first few hundred items) in order or shuffled with a
fixed seed, at high concurrency (arrivals spaced by latency / concurrency, so a run of a thousand items takes
minutes), at temperature 0 with one harness wrapper for every item: "Let's think step by step" or a fixed
few-shot prefix for math, a completion-style stub for code (often on ``/v1/completions``), ``max_tokens`` 1 with
logprobs for multiple choice. Runs come in batches over several models, nightly from CI for some teams, and
many teams benchmark a new model within hours of its release. Every team sends the same public items: the
textbook benign case of "identical prompts from many accounts".
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from distillguard.simulate import benchmarks, content
from distillguard.simulate.benchmarks import Benchmark
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import HOUR_US, OFFICE, US, cumulative, times_in_day, utc_weights
from distillguard.simulate.driver import SDK_BACKOFF
from distillguard.simulate.models import MINI, NEW, OLD, SPEED, TTFT_MS, Adoption, ModelChooser
from distillguard.simulate.populations.base import (
    Actor,
    IpPlan,
    agents,
    cloud_ips,
    is_local_weekend,
    lognormal_int,
    new_profile,
    schedule,
)
from distillguard.simulate.ratelimit import TIERS
from distillguard.simulate.rng import poisson
from distillguard.simulate.world import World

COT_SUFFIXES = ("\nLet's think step by step.", "\nA: Let's think step by step.", "\nThink step by step.")


class EvalTeam(Actor):
    policy = SDK_BACKOFF

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "eval_run",
            "benign",
            tier="enterprise" if rng.random() < 0.4 else "standard",
            keys=rng.randrange(1, 6),
            org=rng.random() < 0.7,
            verified=rng.random() < 0.5,
            paid=0.95,
            email="university" if rng.random() < 0.4 else "company",
        )
        if rng.random() < 0.6:
            ips = cloud_ips(world, rng, rng.randrange(1, 4), shared_egress=0.4)
        else:
            ips = IpPlan(rng.sample(world.network.shared_nats, 1))
        super().__init__(
            world,
            profile,
            rng,
            ips=ips,
            user_agents=agents(rng, "eval", 1),
            models=ModelChooser(Adoption(0.0, None, 1.0, 0.0), world.release_us),
        )
        self.batches_per_week = rng.uniform(0.8, 4.0)
        self.nightly = rng.random() < 0.3
        self.night_hour = (rng.randrange(0, 5) - profile.tz_offset_h) % 24
        self.release_day_eval = rng.random() < 0.6
        self.suite = rng.sample(benchmarks.NAMES, rng.randrange(1, 4))
        self.concurrency = rng.choice((4, 8, 16, 32, 32, 64))
        self.cot = rng.random() < 0.6
        # Most harnesses are configured to stay under the account's per-minute limit; the rest find out by 429s.
        limit = TIERS[profile.tier][0].amount
        self.min_spacing_s = 60.0 / (limit * 0.9) if rng.random() < 0.7 else 0.0

    def calls(self) -> Iterator[Call]:
        return schedule(self._runs())

    def _batch_starts(self) -> list[int]:
        rng, world, tz = self.rng, self.world, self.profile.tz_offset_h
        cum = cumulative(utc_weights(OFFICE, tz))
        starts: list[int] = []
        for day in world.days():
            if self.nightly:
                if rng.random() < 0.85 * min(1.0, world.scale):
                    starts.append(day + self.night_hour * HOUR_US + rng.randrange(0, 600) * US)
            elif not is_local_weekend(day, tz):
                starts += times_in_day(rng, day, poisson(rng, self.batches_per_week / 5 * world.scale), cum)
        if self.release_day_eval and rng.random() < min(1.0, world.scale):
            starts.append(world.release_us + int(rng.uniform(1.0, 12.0) * HOUR_US))
        return sorted(starts)

    def _runs(self) -> Iterator[tuple[int, Iterator[Call]]]:
        """One batch per start: each benchmark of the suite on each model of interest, one run after another."""
        rng = self.rng
        for start in self._batch_starts():
            models = [OLD] + ([MINI] if rng.random() < 0.5 else [])
            if start >= self.world.release_us:
                models = [NEW] + (models if rng.random() < 0.5 else [])
            limit = rng.choice((None, None, 200, 500)) if not self.nightly else 200
            runs = [(rng.choice(self.suite), m) for m in models]
            yield start, self._batch(start, runs, limit)

    def _batch(self, start_us: int, runs: list[tuple[str, str]], limit: int | None) -> Iterator[Call]:
        ts = start_us
        for name, model in runs:
            for call in self._run(ts, self.world.library.benchmark(name), model, limit):
                ts = call.ts_us
                yield call
            ts += int(self.rng.uniform(20, 600) * US)  # looking at the scores, starting the next model

    def _run(self, start_us: int, bench: Benchmark, model: str, limit: int | None) -> Iterator[Call]:
        rng = self.rng
        order = list(range(len(bench.items)))
        if rng.random() < 0.4:
            random.Random(1234).shuffle(order)  # harnesses shuffle with a fixed seed: every team, same order
        if limit is not None:
            order = order[:limit]
        wrap, params, style, target = self._harness(bench)
        spacing_s = max(self.min_spacing_s, (TTFT_MS[model] / 1000 + target / SPEED[model]) / self.concurrency)
        ts = start_us
        completions = bench.kind == "code" and rng.random() < 0.5
        for i in order:
            prompt = wrap.format(x=bench.items[i])
            tokens = lognormal_int(rng, target, 0.4, 1, 8 * target)
            if completions:
                call = self.completion(
                    ts,
                    prompt,
                    style=style,
                    target_tokens=tokens,
                    model=model,
                    stop=["\ndef", "\nclass", "\nif __name__"],
                    **params,
                )
            else:
                call = self.chat(
                    ts,
                    [{"role": "user", "content": prompt}],
                    style=style,
                    target_tokens=tokens,
                    labels=("A", "B", "C", "D") if style == "label" else (),
                    model=model,
                    **params,
                )
            yield call
            ts += int(rng.expovariate(1.0 / spacing_s) * US) + 1

    def _harness(self, bench: Benchmark) -> tuple[str, dict[str, Any], str, int]:
        """The wrapper (``{x}`` = the item), request parameters, reply style and typical reply length."""
        rng = self.rng
        seed = rng.choice((None, 0, 1234))
        if bench.kind == "math":
            if self.cot:
                return (
                    "Question: {x}" + rng.choice(COT_SUFFIXES),
                    {"temperature": 0, "max_tokens": 512, "seed": seed},
                    "cot",
                    180,
                )
            shots = "".join(
                f"Question: {content.math_word_problem(random.Random(k))}\nAnswer: The answer is {k + 3}.\n\n"
                for k in range(rng.choice((4, 5, 8)))
            )  # fixed exemplars: the same few-shot prefix in every run of this harness
            return (
                shots + "Question: {x}\nAnswer:",
                {"temperature": 0, "max_tokens": 256, "stop": ["Question:"]},
                "cot",
                120,
            )
        if bench.kind == "code":
            wrap = rng.choice(
                (
                    "{x}",
                    "Complete the following Python function:\n```python\n{x}```",
                    "You are an expert Python programmer, and here is your task: {x}",
                )
            )
            return wrap, {"temperature": 0, "max_tokens": 1024}, "code", 160
        if bench.kind == "choice":
            return "{x}", {"temperature": 0, "max_tokens": 1, "logprobs": True, "top_logprobs": 5}, "label", 1
        return "{x}", {"temperature": 0, "max_tokens": 2048, "seed": seed}, "chat", 450
