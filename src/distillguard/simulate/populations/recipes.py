"""Harvesting recipes: what an extraction script sends, fixed per account (or per campaign).

A recipe is the handful of choices a script makes once and then repeats millions of times: which wrappers
(few), which system prompt, which sampling parameters, which endpoint. The questions inside the wrappers are
what varies, and they cover everything. Every attack population is a recipe plus a pacing (and, for hydras,
an account layout), so the same kind of harvesting can be run loud, slow, pivoting or spread over a campaign.

Kinds: ``broad`` (encyclopaedic Q&A), ``cot`` (chain-of-thought elicitation in several languages),
``logprob`` (top-k distributions with tiny ``max_tokens``), ``self_instruct`` (Alpaca-style task generation and
instruction/response JSON), ``evol`` (evol-instruct rewriting and paraphrase sweeps), ``rubric`` (the API as a
reward model: rubric scores and pairwise preferences).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distillguard.simulate import content
from distillguard.simulate.calls import CHAT, Call
from distillguard.simulate.clock import US
from distillguard.simulate.populations.base import Actor, lognormal_int
from distillguard.simulate.responses import synthesize

FOLLOWUPS = (
    "Continue.",
    "Now double-check every step of your reasoning and correct any mistakes.",
    "Explain the second step in more detail.",
    "Give an alternative solution path and compare the two.",
    "Rewrite your full reasoning more rigorously.",
)
KINDS = ("broad", "cot", "logprob", "self_instruct", "evol", "rubric")
# Languages of content.COT_WRAPPERS, index for index (the reply comes back in the wrapper's language).
_COT_LANGS = ("en", "en", "en", "en", "zh", "zh", "ru", "es", "de", "ja")


@dataclass(frozen=True)
class Recipe:
    kind: str
    wrappers: tuple[int, ...]  # indexes into the kind's wrapper list
    system: str | None
    params: dict[str, Any] = field(default_factory=dict)
    target: int = 500
    stream_share: float = 0.0
    completions_share: float = 0.0
    # Share of calls followed by a second turn that squeezes out more (multi-turn elicitation).
    followup_share: float = 0.0

    def session(self, actor: Actor, ts_us: int) -> Iterator[Call]:
        """One call, sometimes followed by a follow-up turn once the reply has arrived."""
        first = self.call(actor, ts_us)
        yield first
        rng = actor.rng
        if not self.followup_share or first.endpoint != CHAT or rng.random() >= self.followup_share:
            return
        reply = synthesize(first.style, first.lang, first.target_tokens, first.max_tokens, first.seed, first.labels)
        messages = [
            *first.body["messages"],
            {"role": "assistant", "content": reply.text or ""},
            {"role": "user", "content": rng.choice(FOLLOWUPS)},
        ]
        params = {k: v for k, v in first.body.items() if k not in ("model", "messages")}
        done_s = reply.completion_tokens / 60.0 + rng.uniform(0.5, 5.0)  # generation time, then the script reacts
        yield actor.chat(ts_us + int(done_s * US), messages, style=first.style, lang=first.lang,
                         target_tokens=first.target_tokens, model=first.model, **params)  # fmt: skip

    def call(self, actor: Actor, ts_us: int, item: str | None = None, model: str | None = None) -> Call:
        """One harvesting call; ``item`` is the question when the caller walks a source (a sweep)."""
        rng = actor.rng
        library = actor.world.library
        lang = "en"
        style = "chat"
        labels: tuple[str, ...] = ()
        params = dict(self.params)
        target = lognormal_int(rng, self.target, 0.5, 1, 20 * self.target)
        kind = self.kind
        if kind == "broad":
            prompt = content.HARVEST_WRAPPERS[rng.choice(self.wrappers)].format(q=item or library.harvest_question(rng))
        elif kind == "cot":
            index = rng.choice(self.wrappers)
            question = item or (content.novel_question(rng) if rng.random() < 0.5 else library.harvest_question(rng))
            prompt, lang, style = content.COT_WRAPPERS[index].format(q=question), _COT_LANGS[index], "cot"
        elif kind == "logprob":
            prompt = item or content.logprob_probe(rng)
            style, target = "token", max(1, min(target, int(params.get("max_tokens", 1))))
        elif kind == "self_instruct":
            if rng.random() < 0.5:
                prompt = library.self_instruct_header + content.format_seed_tasks(library.seed_tasks(rng, 3))
                style = "tasks"
                params.update(temperature=1.0, top_p=1.0, max_tokens=3072, stop=["\n20", "20.", "20 ."])
            else:
                seed = item or rng.choice((content.seed_task(rng)[0], library.harvest_question(rng)))
                prompt = content.instruction_response_prompt(rng, seed)
                target = lognormal_int(rng, 350, 0.5, 20, 3000)
                if rng.random() < 0.5:
                    params["response_format"] = {"type": "json_object"}
        elif kind == "evol":
            prompt, style = content.evol_prompt(rng, item or library.evol_seed(rng)), "rewrite"
        else:  # rubric
            question = item or library.harvest_question(rng)
            style = "score"
            if rng.random() < 0.4:
                prompt, labels = content.pairwise_prompt(rng, question), ("A", "B")
                params.update(max_tokens=1, logprobs=True, top_logprobs=2)
            else:
                prompt = content.rubric_prompt(rng, question)
        stream = self.stream_share > 0 and rng.random() < self.stream_share
        if self.completions_share and rng.random() < self.completions_share:
            if kind == "logprob":
                # The completions API takes an integer: the number of top log-probabilities per token.
                params.pop("top_logprobs", None)
                params["logprobs"] = 5
                params["echo"] = rng.random() < 0.3 or None
            return actor.completion(
                ts_us, prompt, style=style, target_tokens=target, labels=labels, model=model, **params
            )
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        return actor.chat(
            ts_us,
            messages,
            style=style,
            lang=lang,
            target_tokens=target,
            labels=labels,
            model=model,
            stream=stream or None,
            **params,
        )


def make_recipe(rng: random.Random, kind: str) -> Recipe:
    """A script's fixed choices for ``kind`` (few wrappers, one system prompt, pinned parameters)."""
    if kind == "broad":
        return Recipe(
            kind,
            tuple(rng.sample(range(len(content.HARVEST_WRAPPERS)), rng.randrange(2, 5))),
            rng.choice((None, None, "You are a helpful assistant.", "You are an expert. Be thorough.")),
            {"temperature": rng.choice((0.7, 0.8, 1.0)), "max_tokens": rng.choice((1024, 2048, 4096))},
            target=550,
            completions_share=rng.choice((0.0, 0.0, 0.3)),
        )
    if kind == "cot":
        english = rng.sample(range(4), rng.randrange(1, 3))
        other = rng.sample(range(4, len(content.COT_WRAPPERS)), rng.randrange(1, 4))
        return Recipe(
            kind,
            tuple(english + other),
            rng.choice((None, *content.COT_SYSTEM_PROMPTS)),
            {"temperature": rng.choice((0.6, 0.7, 1.0)), "max_tokens": rng.choice((4096, 8192, 16384))},
            target=1400,
            stream_share=rng.choice((0.0, 0.5, 1.0)),
            followup_share=rng.choice((0.0, 0.1, 0.25)),
        )
    if kind == "logprob":
        return Recipe(
            kind,
            (),
            None,
            {
                "temperature": rng.choice((0, 1.0)),
                "max_tokens": rng.choice((1, 1, 2, 5)),
                "logprobs": True,
                "top_logprobs": rng.choice((20, 20, 10, 5)),
            },
            target=2,
            completions_share=rng.choice((0.0, 0.3, 0.6)),
        )
    if kind == "self_instruct":
        return Recipe(
            kind,
            (),
            None,
            {"temperature": 0.7, "max_tokens": 1024},
            target=1300,
            completions_share=rng.choice((0.0, 0.4)),
        )
    if kind == "evol":
        return Recipe(kind, (), None, {"temperature": rng.choice((0.7, 1.0)), "max_tokens": 2048}, target=130)
    return Recipe(
        kind, (), rng.choice((None, "You are a strict, fair grader.")), {"temperature": 0, "max_tokens": 256}, target=60
    )
