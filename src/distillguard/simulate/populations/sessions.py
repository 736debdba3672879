"""Multi-turn conversations: the history grows turn by turn, and the user reads before answering.

Shared by every population that talks to the model like a person (casual users, developers, researchers, the
customers behind a reseller). Each request carries the whole history, assistant replies included, exactly as
chat clients send it, so prompt tokens grow over a conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from distillguard.simulate.calls import Call
from distillguard.simulate.clock import US
from distillguard.simulate.populations.base import Actor
from distillguard.simulate.responses import synthesize
from distillguard.simulate.rng import lognormal


def conversation(
    actor: Actor,
    start_us: int,
    first: str,
    *,
    turns: int,
    followup: Callable[[], str],
    lang: str = "en",
    system: str | None = None,
    style: str = "chat",
    target: Callable[[], int] = lambda: 300,
    think_s: float = 25.0,
    params: dict[str, Any] | None = None,
) -> Iterator[Call]:
    """The calls of one conversation of ``turns`` user turns starting at ``start_us``.

    Between turns the user reads the reply (proportional to its length) and types (``think_s`` median, heavy
    tailed). A follow-up turn is a fresh ``followup()`` message.
    """
    rng = actor.rng
    messages: list[dict[str, Any]] = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": first})
    ts = start_us
    model: str | None = None
    for turn in range(turns):
        call = actor.chat(
            ts, list(messages), style=style, lang=lang, target_tokens=target(), model=model, **(params or {})
        )
        model = call.model  # a conversation stays on one model
        yield call
        if turn + 1 == turns:
            return
        reply = synthesize(call.style, call.lang, call.target_tokens, call.max_tokens, call.seed, call.labels)
        messages.append({"role": "assistant", "content": reply.text or ""})
        messages.append({"role": "user", "content": followup()})
        reading_s = reply.completion_tokens * 0.04
        ts += int((reading_s + lognormal(rng, think_s, 0.7)) * US)
