"""People chatting: ``casual_chat`` and ``researcher``.

casual_chat
    Free or standard accounts of individuals. Multi-turn conversations (history grows), mostly in the evening of
    the account's time zone, with a per-person weekend habit; topics from daily life and anything they just
    read; the account's own language (a dozen languages) with some English. Chat front-ends: streaming, browser
    or JS user agents, no explicit max_tokens. Home IPs that change every few days, plus shared NATs and VPNs.
    Humans retry a refusal once.
researcher
    Moderate volume on weekdays, diverse topics, long pasted documents, frequent requests for step-by-step
    reasoning (overlapping chain-of-thought harvesters), and now and then a batch experiment: a script sending
    a few hundred single-turn questions in a row (overlapping harvesting in shape, not in scale or persistence).
    University NATs, adopts a new model quickly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from distillguard.simulate import content
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import EVENING, OFFICE, US, blend, cumulative, times_in_day, utc_weights
from distillguard.simulate.driver import HUMAN, SDK_BACKOFF
from distillguard.simulate.models import ModelChooser, benign_adoption
from distillguard.simulate.populations.base import (
    Actor,
    IpPlan,
    agents,
    home_ips,
    is_local_weekend,
    lognormal_int,
    new_profile,
    schedule,
)
from distillguard.simulate.populations.sessions import conversation
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World

UI_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are ChatBot, a friendly assistant. Answer concisely.",
    "You are a helpful assistant. Use Markdown.",
    "Du bist ein hilfreicher Assistent.",
)


def casual_session(actor: Actor, start_us: int, lang: str, *, stream: bool, system: str | None) -> Iterator[Call]:
    """One casual conversation (also used for the end users behind a reseller)."""
    rng = actor.rng
    turns = min(12, 1 + int(rng.expovariate(1 / 1.6)))
    return conversation(
        actor,
        start_us,
        actor.world.library.chat_opening(rng, lang),
        turns=turns,
        followup=lambda: content.casual_followup(rng, lang),
        lang=lang,
        system=system,
        target=lambda: lognormal_int(rng, 280, 0.6, 20, 2500),
        think_s=35.0,
        params={"stream": stream or None, "temperature": rng.choice((None, None, 0.7, 1.0))},
    )


class CasualChat(Actor):
    policy = HUMAN

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "casual_chat",
            "benign",
            tier="free" if rng.random() < 0.55 else "standard",
            keys=1 if rng.random() < 0.85 else 2,
            paid=0.5,
            email="consumer" if rng.random() < 0.85 else rng.choice(("company", "university")),
        )
        if profile.language != "en" and rng.random() < 0.3:
            profile.language = "en"
        elif profile.language == "en" and rng.random() < 0.08:
            profile.language = rng.choice(content.LANGUAGES)
        super().__init__(
            world,
            profile,
            rng,
            ips=home_ips(world, rng, shared=rng.uniform(0.05, 0.4)),
            user_agents=agents(rng, "chat"),
            models=ModelChooser(benign_adoption(rng, mini_share=rng.uniform(0.1, 0.6)), world.release_us),
        )
        self.p_active = rng.uniform(0.2, 0.95)
        self.sessions_per_day = lognormal(rng, 1.5, 0.7)
        self.weekend_factor = rng.uniform(0.5, 1.8)
        self.rhythm = cumulative(utc_weights(blend(EVENING, rng.uniform(0.5, 1.0)), profile.tz_offset_h))
        self.stream = rng.random() < 0.7
        self.system = rng.choice(UI_SYSTEM_PROMPTS) if rng.random() < 0.3 else None

    def calls(self) -> Iterator[Call]:
        return schedule(self._sessions())

    def _sessions(self) -> Iterator[tuple[int, Iterator[Call]]]:
        rng, world = self.rng, self.world
        for day in world.days():
            factor = self.weekend_factor if is_local_weekend(day, self.profile.tz_offset_h) else 1.0
            if rng.random() > min(1.0, self.p_active * factor):
                continue
            n = poisson(rng, self.sessions_per_day * factor * world.scale)
            for start in times_in_day(rng, day, n, self.rhythm):
                yield start, casual_session(self, start, self.profile.language, stream=self.stream, system=self.system)


class Researcher(Actor):
    policy = SDK_BACKOFF

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "researcher",
            "benign",
            tier="standard",
            keys=rng.randrange(1, 3),
            org=rng.random() < 0.5,
            paid=0.9,
            email="university" if rng.random() < 0.6 else "company",
        )
        net = world.network
        campus = rng.sample(net.shared_nats, 2)
        ips = IpPlan(campus, secondary=home_ips(world, rng).primary, secondary_share=0.3)
        if rng.random() < 0.3:  # works from cloud notebooks
            ips = IpPlan(rng.sample(net.cloud_egress, 3), secondary=campus, secondary_share=0.3)
        super().__init__(
            world,
            profile,
            rng,
            ips=ips,
            user_agents=agents(rng, "dev", 3),
            models=ModelChooser(benign_adoption(rng, mini_share=0.15, never=0.15), world.release_us),
        )
        self.per_day = lognormal(rng, 4.0, 0.6)
        self.rhythm = blend(OFFICE, rng.uniform(0.4, 0.9))
        self.batch_chance = rng.uniform(0.02, 0.12)

    def calls(self) -> Iterator[Call]:
        return schedule(self._sessions())

    def _sessions(self) -> Iterator[tuple[int, Iterator[Call]]]:
        rng, world = self.rng, self.world
        cum = cumulative(utc_weights(self.rhythm, self.profile.tz_offset_h))
        for day in world.days():
            weekend = is_local_weekend(day, self.profile.tz_offset_h)
            n = poisson(rng, self.per_day * (0.3 if weekend else 1.0) * world.scale)
            starts = [(t, False) for t in times_in_day(rng, day, n, cum)]
            if rng.random() < self.batch_chance * (0.3 if weekend else 1.0) * world.scale:
                starts += [(t, True) for t in times_in_day(rng, day, 1, cum)]
                starts.sort()
            for start, batch in starts:
                yield start, self._batch(start) if batch else self._session(start)

    def _session(self, start_us: int) -> Iterator[Call]:
        rng = self.rng
        prompt, reasoning = content.research_prompt(rng)
        return conversation(
            self,
            start_us,
            prompt,
            turns=1 + int(rng.expovariate(1 / 1.2)),
            followup=lambda: rng.choice(
                (
                    "Can you elaborate on the second point?",
                    "What are the counterarguments?",
                    "Give me references I could check.",
                    content.broad_question(rng),
                )
            ),
            style="cot" if reasoning else "chat",
            target=lambda: lognormal_int(rng, 900 if reasoning else 450, 0.6, 50, 6000),
            think_s=90.0,
            params={"temperature": rng.choice((None, 0.2, 0.7)), "max_tokens": rng.choice((None, 4096))},
        )

    def _batch(self, start_us: int) -> Iterator[Call]:
        """An experiment script: one template, a few hundred questions, sequential, sampled several times."""
        rng = self.rng
        template = rng.choice(content.HARVEST_WRAPPERS + content.COT_WRAPPERS[:3])
        model = self.models.choose(rng, start_us)
        ts = start_us
        temperature = rng.choice((0.0, 0.7, 1.0))
        n = rng.choice((1, 1, 1, 4, 8))
        for _ in range(lognormal_int(rng, 150, 0.7, 20, 800)):
            question = self.world.library.harvest_question(rng)
            yield self.chat(
                ts,
                [{"role": "user", "content": template.format(q=question)}],
                style="chat",
                model=model,
                target_tokens=lognormal_int(rng, 350, 0.5, 30, 3000),
                temperature=temperature,
                n=n if n > 1 else None,
                user_agent=self.user_agents[-1],
            )
            ts += int(lognormal(rng, 6.0, 0.5) * US)
