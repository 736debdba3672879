"""``business_app``: a product built on the API, the heaviest benign traffic.

One fixed system prompt per app and narrow, templated user content with varying fillers (support tickets,
reviews, invoices, comments, product briefs). Classification apps ask for ``logprobs``/``top_logprobs`` with
``max_tokens`` 1-5 and temperature 0 (the same request shape as logprob harvesting, on a narrow domain).
High volume around the clock with a soft daily swell in the customers' time zone, occasional surges (a
marketing mail, an incident), many API keys (one per service or environment), a verified organisation, a
pinned model, a few datacenter egress addresses and one pinned SDK version. Backs off on 429s.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from distillguard.simulate import content
from distillguard.simulate.calls import Call
from distillguard.simulate.clock import CUSTOMER, DAY_US, HOUR_US, blend, cumulative, times_in_day, utc_weights
from distillguard.simulate.driver import APP_BACKOFF
from distillguard.simulate.models import MINI, OLD, Adoption, ModelChooser
from distillguard.simulate.populations.base import (
    Actor,
    agents,
    cloud_ips,
    is_local_weekend,
    lognormal_int,
    new_profile,
)
from distillguard.simulate.rng import lognormal, poisson
from distillguard.simulate.world import World

Filler = Callable[[random.Random, tuple[str, ...]], str]


@dataclass(frozen=True)
class AppKind:
    """A kind of app: its system prompt (``{company}`` filled per account), user content and reply shape."""

    system: str
    user: Filler
    style: str
    labels: tuple[str, ...] = ()
    logprobs: bool = False


def _ticket(rng: random.Random, products: tuple[str, ...]) -> str:
    return content.ticket_text(rng, products)[0]


APPS: dict[str, AppKind] = {
    "ticket_router": AppKind(
        "You are the support ticket router of {company}. Classify the ticket into exactly one category: billing, "
        "technical, account, shipping, other. Answer with the category only.",
        _ticket, "label", ("billing", "technical", "account", "shipping", "other"), logprobs=True,
    ),
    "sentiment": AppKind(
        "Classify the sentiment of the customer review for {company} as positive, negative or neutral. "
        "Reply with one word.",
        content.review_text, "label", ("positive", "negative", "neutral"), logprobs=True,
    ),
    "moderation": AppKind(
        "You moderate comments on the {company} community forum. Does the comment violate the guidelines "
        "(harassment, spam, hate)? Answer yes or no.",
        lambda rng, _: content.comment_text(rng), "label", ("no", "yes"), logprobs=True,
    ),
    "invoice_extractor": AppKind(
        "Extract vendor, invoice_number, date, total and currency from the invoice text for {company}'s "
        "accounting system. Return a JSON object with exactly these keys.",
        lambda rng, _: content.invoice_text(rng), "json",
    ),
    "product_copy": AppKind(
        "You write product descriptions for {company}'s online store: 80-120 words, no superlatives, end with a "
        "call to action.",
        content.product_brief, "chat",
    ),
    "support_reply": AppKind(
        "You are {company}'s support assistant. Draft a polite reply to the ticket. Never promise refunds.",
        _ticket, "chat",
    ),
}  # fmt: skip


class BusinessApp(Actor):
    policy = APP_BACKOFF

    def __init__(self, world: World, rng: random.Random) -> None:
        profile = new_profile(
            world,
            rng,
            "business_app",
            "benign",
            tier="enterprise" if rng.random() < 0.5 else "standard",
            keys=rng.randrange(4, 40),
            verified=rng.random() < 0.92,
            org=True,
            paid=1.0,
            email="company",
            created_at_us=world.start_us - int(lognormal(rng, 300, 0.6) * DAY_US),
        )
        model = OLD if rng.random() < 0.6 else MINI
        super().__init__(
            world,
            profile,
            rng,
            ips=cloud_ips(world, rng, rng.randrange(2, 8), shared_egress=0.25),
            user_agents=agents(rng, "app", 2),
            # Pinned: a production app changes model after testing, which takes longer than the simulated span.
            models=ModelChooser(Adoption(1.0 if model == MINI else 0.0, None, 1.0, 0.0), world.release_us),
        )
        self.kind = APPS[rng.choice(tuple(APPS))]
        company = profile.email_domain.split(".")[0].title()
        self.system = self.kind.system.format(company=company)
        self.products = tuple(rng.sample(content.PRODUCTS, 4))
        self.per_minute = max(0.03, min(12.0, lognormal(rng, 0.35, 1.0)))
        self.rhythm = cumulative(utc_weights(blend(CUSTOMER, rng.uniform(0.3, 0.95)), profile.tz_offset_h))
        self.weekend_factor = rng.uniform(0.5, 1.1)
        self.max_tokens = rng.randrange(1, 6) if self.kind.style == "label" else rng.choice((200, 256, 400, 512))
        self.top_logprobs = rng.choice((2, 3, 5, 5, 10))
        self.surge_chance = rng.uniform(0.0, 0.15)

    def calls(self) -> Iterator[Call]:
        rng, world, tz = self.rng, self.world, self.profile.tz_offset_h
        for day in world.days():
            factor = self.weekend_factor if is_local_weekend(day, tz) else 1.0
            times = times_in_day(rng, day, poisson(rng, self.per_minute * 1440 * factor * world.scale), self.rhythm)
            if rng.random() < self.surge_chance:
                # A surge: 1-3 hours at several times the usual rate.
                begin = day + rng.randrange(24) * HOUR_US
                # Kept within the day: days are generated in order, so a spill would break time order.
                length = min(rng.randrange(1, 4) * HOUR_US, day + DAY_US - begin)
                extra = poisson(rng, self.per_minute * 60 * length / HOUR_US * rng.uniform(2, 6) * world.scale)
                times += [begin + int(rng.random() * length) for _ in range(extra)]
                times.sort()
            for ts in times:
                yield self._call(ts)

    def _call(self, ts: int) -> Call:
        kind, rng = self.kind, self.rng
        messages = [
            {"role": "system", "content": self.system},
            {"role": "user", "content": kind.user(rng, self.products)},
        ]
        if kind.style == "label":
            return self.chat(
                ts,
                messages,
                style="label",
                labels=kind.labels,
                target_tokens=1,
                temperature=0,
                max_tokens=self.max_tokens,
                logprobs=True,
                top_logprobs=self.top_logprobs,
            )
        return self.chat(
            ts,
            messages,
            style=kind.style,
            target_tokens=lognormal_int(rng, 120, 0.3, 30, 500),
            temperature=0.2,
            max_tokens=self.max_tokens,
            response_format={"type": "json_object"} if kind.style == "json" else None,
        )
