"""``developer``: people building on the API.

Working-hours sessions (weekends light), each a burst of code questions a few minutes apart; some sessions are
debugging conversations ("that didn't work, now I get ..."), some calls carry tool definitions, some are sent
twice (double submits, client-side retries), a few are malformed (400s) and a few probe the new model before
it exists (404). Now and then a pipeline test: a script firing tens to hundreds of templated calls in quick
succession from ``python-requests``, which looks like harvesting in shape but is short, narrow and rare.
Standard tier, teams share an organisation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

from distillguard.simulate import content
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import EVENING, MINUTE_US, OFFICE, US, blend, cumulative, times_in_day, utc_weights
from distillguard.simulate.driver import SDK_BACKOFF
from distillguard.simulate.models import NEW, ModelChooser, benign_adoption
from distillguard.simulate.populations.base import (
    Actor,
    IpPlan,
    agents,
    cloud_ips,
    home_ips,
    is_local_weekend,
    lognormal_int,
    new_profile,
    schedule,
)
from distillguard.simulate.populations.sessions import conversation
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World

_DEBUG_FOLLOWUPS = (
    "that didn't work, now I get:\n{e}",
    "ok that fixed it. how would I write a test for it?",
    "can you make it async?",
    "what's the time complexity?",
    "now do the same in {l}",
    "it works but it's slow with 1M rows, how do I speed it up?",
)
_BAD_PARAMS = (
    ({"temperature": 3.5}, "invalid_value"),
    ({"max_tokens": 0}, "integer_below_min_value"),
    ({"top_logprobs": 30, "logprobs": True}, "integer_above_max_value"),
    ({"n": "2"}, "invalid_type"),
)


def developer_session(actor: Actor, start_us: int, *, tools_share: float = 0.15) -> Iterator[Call]:
    """A work session: several questions a few minutes apart, or one debugging conversation."""
    rng = actor.rng
    if rng.random() < 0.4:
        yield from conversation(
            actor,
            start_us,
            content.code_question(rng),
            turns=rng.randrange(2, 7),
            followup=lambda: rng.choice(_DEBUG_FOLLOWUPS).format(
                e=rng.choice(content.ERRORS), l=rng.choice(content.CODE_LANGS)
            ),
            style="code",
            target=lambda: lognormal_int(rng, 420, 0.5, 40, 3000),
            think_s=120.0,
            params={"temperature": rng.choice((None, 0.0, 0.2)), "stream": rng.random() < 0.4 or None},
        )
        return
    ts = start_us
    for _ in range(lognormal_int(rng, 6, 0.7, 1, 40)):
        call = _code_call(actor, ts, tools_share)
        yield call
        last = ts
        if rng.random() < 0.08:  # double submit / client retry: the same body again, seconds later
            last = ts + int(rng.uniform(0.5, 6) * US)
            yield replace(call, ts_us=last, seed=call.seed + 1)
        ts = max(last, ts + int(lognormal(rng, 4.0, 0.8) * MINUTE_US))


def _code_call(actor: Actor, ts: int, tools_share: float) -> Call:
    rng = actor.rng
    messages = [{"role": "user", "content": content.code_question(rng)}]
    if rng.random() < 0.25:
        messages.insert(
            0,
            {
                "role": "system",
                "content": rng.choice(
                    (
                        "You are an expert software engineer. Answer with code first.",
                        "You are a senior Python developer.",
                        "Be concise. Only output code unless asked otherwise.",
                    )
                ),
            },
        )
    if rng.random() < tools_share:
        tools = list(rng.sample(content.TOOL_DEFS, rng.randrange(1, len(content.TOOL_DEFS) + 1)))
        return actor.chat(
            ts,
            messages,
            style="tool" if rng.random() < 0.5 else "code",
            tools=tools,
            tool_choice="auto",
            target_tokens=200,
        )
    call = actor.chat(
        ts,
        messages,
        style="code",
        target_tokens=lognormal_int(rng, 380, 0.6, 30, 4000),
        temperature=rng.choice((None, 0.0, 0.2, 0.7)),
        max_tokens=rng.choice((None, None, 2048, 4096)),
    )
    roll = rng.random()
    if roll < 0.01:
        params, code = rng.choice(_BAD_PARAMS)
        call.body.update(params)
        call.reject = code
    elif roll < 0.015 and ts > actor.world.start_us + actor.world.span_us // 2:
        call.body["model"] = NEW  # trying the announced model a bit early
    return call


class Developer(Actor):
    policy = SDK_BACKOFF

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "developer",
            "benign",
            tier="standard" if rng.random() < 0.8 else "free",
            keys=rng.randrange(1, 4),
            org=rng.random() < 0.4,
            paid=0.85,
            email="company" if rng.random() < 0.6 else "consumer",
        )
        ips = home_ips(world, rng, shared=0.1)
        if rng.random() < 0.5:  # works from an office (shared NAT) and runs code on cloud machines
            office = rng.sample(world.network.shared_nats, 1)
            ips = IpPlan(office, secondary=cloud_ips(world, rng, 2).primary + ips.primary, secondary_share=0.35)
        super().__init__(
            world,
            profile,
            rng,
            ips=ips,
            user_agents=agents(rng, "dev", 3),
            models=ModelChooser(benign_adoption(rng, mini_share=0.3, never=0.2), world.release_us),
        )
        self.sessions_per_day = lognormal(rng, 1.6, 0.6)
        shape = [o + 0.35 * e for o, e in zip(OFFICE, EVENING, strict=True)] if rng.random() < 0.3 else OFFICE
        self.rhythm = cumulative(utc_weights(blend(shape, rng.uniform(0.6, 1.0)), profile.tz_offset_h))
        self.weekend_factor = rng.uniform(0.05, 0.5)
        self.script_chance = rng.uniform(0.0, 0.08)
        self.tools_share = rng.uniform(0.0, 0.35)

    def calls(self) -> Iterator[Call]:
        return schedule(self._sessions())

    def _sessions(self) -> Iterator[tuple[int, Iterator[Call]]]:
        rng, world, tz = self.rng, self.world, self.profile.tz_offset_h
        for day in world.days():
            factor = self.weekend_factor if is_local_weekend(day, tz) else 1.0
            starts = [
                (t, False)
                for t in times_in_day(rng, day, poisson(rng, self.sessions_per_day * factor * world.scale), self.rhythm)
            ]
            if rng.random() < self.script_chance * factor * world.scale:
                starts += [(t, True) for t in times_in_day(rng, day, 1, self.rhythm)]
                starts.sort()
            for start, script in starts:
                yield (
                    start,
                    self._script(start) if script else developer_session(self, start, tools_share=self.tools_share),
                )

    def _script(self, start_us: int) -> Iterator[Call]:
        """Testing a pipeline: one template with varying fillers, sub-second spacing, a script's user agent."""
        rng = self.rng
        template = rng.choice(
            (
                "Summarize the following text in one sentence:\n\n{x}",
                "Extract all dates from: {x}",
                "Translate to French: {x}",
                "Classify the topic of this text (one word): {x}",
            )
        )
        ua = rng.choice(("python-requests/2.32.3", "curl/8.5.0", self.user_agents[0]))
        ts = start_us
        for _ in range(lognormal_int(rng, 60, 0.9, 10, 400)):
            filler = content.filler_paragraphs(rng, 1)
            yield self.chat(
                ts,
                [{"role": "user", "content": template.format(x=filler)}],
                style="chat",
                target_tokens=lognormal_int(rng, 60, 0.5, 5, 400),
                temperature=0.0,
                user_agent=ua,
            )
            ts += int(lognormal(rng, 0.8, 0.6) * US)
