"""Provenance test of a suspect model: did it learn from text we served with our watermark?

A model trained on watermarked answers inherits their keyed preferences (radioactivity): after the same previous
word it tends to pick the same variant our key picked. The test sends probe prompts to the suspect's
OpenAI-compatible endpoint, finds the watermark sites in its answers, scores each (class, previous word) once, and
computes the exact p-value of the agreement with our key. Optionally only the (class, previous word) pairs that
occur in what we actually served are scored: the contexts a student can have learned the preference from.

An endpoint that fails, times out or answers nothing scoreable gives an inconclusive result, never "detected".
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from distillguard.watermark.result import DEFAULT_ALPHA, Detection
from distillguard.watermark.text import SCHEME, Site, TextKey, score_sites, sites

_TOPICS = (
    "version control", "unit testing", "password security", "photosynthesis", "compound interest", "remote work",
    "public speaking", "sleep hygiene", "climate change", "machine learning", "time management", "negotiation",
    "home networking", "budgeting", "learning a language", "writing a CV", "database indexing", "team meetings",
    "composting", "the French Revolution", "vaccines", "electric cars", "job interviews", "code review",
)  # fmt: skip
_TEMPLATES = (
    "Explain {t} to a beginner. Give a few examples, mention common mistakes, and finish with a short summary.",
    "What should I keep in mind about {t}? Walk me through it step by step and wrap up with advice.",
    "Write a friendly guide to {t}: first the basics, then tips, then what people often get wrong.",
    "Compare the main approaches to {t}, say when each is used, and conclude with a recommendation.",
)


def probe_prompts(count: int, seed: int = 0) -> list[str]:
    """Prompts that draw long explanatory prose (where the watermark's sites are): topic x template, shuffled."""
    grid = [template.format(t=topic) for topic in _TOPICS for template in _TEMPLATES]
    rng = random.Random(seed)
    rng.shuffle(grid)
    return [grid[i % len(grid)] + ("" if i < len(grid) else f" (variant {i // len(grid)})") for i in range(count)]


@dataclass(slots=True)
class ProvenanceReport:
    endpoint: str
    model: str
    queries_sent: int
    queries_answered: int
    errors: dict[str, int]
    words: int
    detection: Detection
    restricted_to_served: bool
    evidence: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.queries_answered == 0 or self.detection.scored == 0:
            return "inconclusive"
        return "inherited" if self.detection.detected else "not_detected"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "provenance_test",
            "scheme": SCHEME,
            "verdict": self.verdict,
            "endpoint": self.endpoint,
            "model": self.model,
            "queries": {"sent": self.queries_sent, "answered": self.queries_answered, "errors": self.errors},
            "words": self.words,
            "restricted_to_served": self.restricted_to_served,
            "detection": self.detection.to_json(),
            "evidence": self.evidence,
            "seconds": round(self.seconds, 1),
        }


def served_contexts(texts: Iterable[str]) -> set[tuple[int, str]]:
    """The (class, previous word) pairs that occur in the texts we served."""
    return {(s.cls.cid, s.context) for text in texts for s in sites(text)}


def score(
    found: Sequence[Site],
    keys: Sequence[TextKey],
    alpha: float = DEFAULT_ALPHA,
    only: set[tuple[int, str]] | None = None,
) -> tuple[Detection, list[dict[str, Any]]]:
    """The best key's exact p-value over distinct (class, context) sites, Bonferroni-corrected, with evidence."""
    tests = max(1, len(keys))
    best: tuple[Detection, list[dict[str, Any]]] | None = None
    for key in keys:
        scored = score_sites(found, key, 2, only)
        result = scored.detection(key, alpha, tests)
        if best is None or result.p_value < best[0].p_value:
            evidence = [
                {"after": s.context, "wrote": " ".join(s.cls.variants[s.variant]), "agrees": hit}
                for s, hit in scored.agreed
            ]
            best = (result, evidence)
    if best is None:
        return Detection(SCHEME, None, 0, 0, 0.0, 1.0, alpha, tests), []
    return best


async def _ask(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], model: str, prompt: str, max_tokens: int
) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    async with session.post(url, json=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"http_{resp.status}")
        payload = await resp.json(content_type=None)
    content = payload["choices"][0]["message"]["content"]
    if not isinstance(content, str):
        raise RuntimeError("no_text")
    return content


async def collect(
    endpoint: str,
    model: str,
    prompts: Sequence[str],
    api_key: str | None = None,
    concurrency: int = 8,
    timeout_s: float = 60.0,
    max_tokens: int = 512,
) -> tuple[list[str], dict[str, int]]:
    """The suspect's answers to the prompts (failures counted by kind, never retried into the score)."""
    url = endpoint.rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    # In prompt order, whatever order they come back in: each context is scored at its first occurrence, so the
    # order must not depend on the network.
    replies: list[str | None] = [None] * len(prompts)
    errors: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(index: int, prompt: str) -> None:
            async with gate:
                try:
                    replies[index] = await _ask(session, url, headers, model, prompt, max_tokens)
                except TimeoutError:
                    errors["timeout"] = errors.get("timeout", 0) + 1
                except aiohttp.ClientError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                except (RuntimeError, KeyError, IndexError, TypeError, ValueError) as exc:
                    kind = str(exc) if isinstance(exc, RuntimeError) else "malformed_answer"
                    errors[kind] = errors.get(kind, 0) + 1

        await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return [r for r in replies if r is not None], errors


def examine(
    endpoint: str,
    model: str,
    keys: Sequence[TextKey],
    queries: int = 2000,
    api_key: str | None = None,
    served: set[tuple[int, str]] | None = None,
    alpha: float = DEFAULT_ALPHA,
    concurrency: int = 8,
    timeout_s: float = 60.0,
    max_tokens: int = 512,
) -> ProvenanceReport:
    started = time.monotonic()
    prompts = probe_prompts(queries)
    answers, errors = asyncio.run(collect(endpoint, model, prompts, api_key, concurrency, timeout_s, max_tokens))
    found = [s for text in answers for s in sites(text)]
    detection, evidence = score(found, keys, alpha, served)
    return ProvenanceReport(
        endpoint=endpoint,
        model=model,
        queries_sent=len(prompts),
        queries_answered=len(answers),
        errors=errors,
        words=sum(len(a.split()) for a in answers),
        detection=detection,
        restricted_to_served=served is not None,
        evidence=evidence[:50],
        seconds=time.monotonic() - started,
    )
