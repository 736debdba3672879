"""Deterministic completions: the same request always gets the same words, usage and log-probabilities."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

_WORDS = [
    "the",
    "model",
    "considers",
    "each",
    "part",
    "of",
    "the",
    "question",
    "and",
    "answers",
    "it",
    "with",
    "care",
    "so",
    "that",
    "the",
    "result",
    "is",
    "clear",
    "first",
    "we",
    "note",
    "what",
    "is",
    "given",
    "then",
    "we",
    "work",
    "out",
    "what",
    "follows",
    "from",
    "it",
    "and",
    "check",
    "every",
    "step",
    "against",
    "the",
    "facts",
    "a",
    "short",
    "summary",
    "closes",
    "the",
    "answer",
    "with",
    "the",
    "main",
    "points",
    "and",
    "any",
    "caveats",
    "worth",
    "keeping",
    "in",
    "mind",
    "data",
    "systems",
    "often",
    "trade",
    "speed",
    "for",
    "safety",
    "and",
    "a",
    "good",
    "design",
    "makes",
    "that",
    "choice",
    "explicit",
    "for",
    "its",
    "users",
]
_REASONING = [
    "Let",
    "me",
    "think",
    "about",
    "this",
    "step",
    "by",
    "step.",
    "The",
    "request",
    "asks",
    "for",
    "something",
    "specific,",
    "so",
    "I",
    "should",
    "identify",
    "the",
    "key",
    "facts,",
    "consider",
    "the",
    "constraints,",
    "and",
    "check",
    "my",
    "intermediate",
    "results",
    "before",
    "answering.",
]
DEFAULT_COMPLETION_TOKENS = 48


@dataclass(slots=True)
class Generated:
    tokens: list[str]
    reasoning: list[str]
    finish_reason: str
    prompt_tokens: int
    # per token: (logprob, [(alternative, logprob), ...])
    logprobs: list[tuple[float, list[tuple[str, float]]]] | None


def _prompt_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(str(p) for p in prompt)
    return str(prompt or "")


def generate(body: dict[str, Any], reasoning: bool, choice: int = 0) -> Generated:
    text = _prompt_text(body)
    seed = hashlib.blake2b(f"{body.get('model')}|{choice}|{text}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(seed, "big"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    natural = 16 + rng.randrange(DEFAULT_COMPLETION_TOKENS)
    count = natural if not isinstance(limit, int) else min(natural, limit)
    finish = "length" if isinstance(limit, int) and limit < natural else "stop"
    words = [rng.choice(_WORDS) for _ in range(count)]
    tokens = [(w if i == 0 else " " + w) for i, w in enumerate(words)]
    if tokens and finish == "stop":
        tokens[-1] += "."
    want_logprobs = body.get("logprobs")
    top = body.get("top_logprobs")
    logprobs = None
    if want_logprobs:
        k = top if isinstance(top, int) else (want_logprobs if isinstance(want_logprobs, int) else 0)
        logprobs = []
        for token in tokens:
            lp = -round(rng.random() * 2.5, 4)
            alts = [(token, lp)] + [
                (" " + rng.choice(_WORDS), round(lp - 0.5 - rng.random() * 3, 4)) for _ in range(max(0, k - 1))
            ]
            logprobs.append((lp, alts[:k]))
    return Generated(
        tokens=tokens,
        reasoning=list(_REASONING) if reasoning else [],
        finish_reason=finish,
        prompt_tokens=max(1, math.ceil(len(text) / 4)) + 3,
        logprobs=logprobs,
    )
