"""``extract``: one request body in, its ``RequestSignals`` out. Runs on the gateway's request path.

Costs are kept per request, not per prompt length: the texts are cut to an analysis window (head and tail, see
``text.window``), lower-cased and tokenised once, and the phrase rules only run the regexes their keyword gates
let through. The system prompt repeats across an account's calls, so its rule matches are cached by its text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Set
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from distillguard.detect.signals.benchmarks import MIN_SEGMENT_CHARS, load_index
from distillguard.detect.signals.domain import DomainPattern, load_domains
from distillguard.detect.signals.language import VOCABULARY as LANGUAGE_VOCABULARY
from distillguard.detect.signals.language import detect_language, stopword_languages
from distillguard.detect.signals.request import RequestView, read_request
from distillguard.detect.signals.rules import load_phrase_rules
from distillguard.detect.signals.simhash import simhash_bytes
from distillguard.detect.signals.template import template_id
from distillguard.detect.signals.text import hash_hex16, needs_substrings, tokens, tokens_and_bytes, window
from distillguard.events.signals import RequestSignals

log = logging.getLogger(__name__)

# A completion this short cannot be the product; with log-probabilities it is a probe of the distribution.
LOGPROB_HARVEST_MAX_TOKENS = 5

_PHRASES = load_phrase_rules(("cot", "training_data", "rubric"))
PhraseMatches = tuple[str | None, str | None, str | None]  # (cot, training_data, rubric) rule ids
_NO_MATCH: PhraseMatches = (None, None, None)
_DOMAINS = load_domains()
# Every word any detector looks up. One intersection with the prompt's tokens (a C loop over them) replaces a
# pass per detector; the detectors then only see these few words.
_LEXICON = _PHRASES.vocabulary() | _DOMAINS.vocabulary() | LANGUAGE_VOCABULARY


@dataclass(frozen=True, slots=True)
class _Word:
    """Everything the detectors do with one word, so that each word of a prompt costs one dict lookup."""

    phrase_refs: tuple[tuple[int, int, int], ...]
    domain_points: tuple[tuple[int, int], ...]
    domain_patterns: tuple[tuple[int, DomainPattern], ...]
    languages: tuple[int, ...]


def _word_index() -> dict[str, _Word]:
    refs = _PHRASES.word_refs()
    return {
        word: _Word(
            refs.get(word, ()),
            _DOMAINS.points.get(word, ()),
            _DOMAINS.token_triggers.get(word, ()),
            stopword_languages(word),
        )
        for word in _LEXICON
    }


_WORDS = _word_index()
_BENCHMARKS = load_index()
_DIGIT_TO_ZERO = str.maketrans("123456789", "000000000")


def _phrase_signals(text: str, lower: str, token_set: Set[str], substrings: bool) -> PhraseMatches:
    """(cot, training_data, rubric) rule ids matched in a windowed text."""
    cot, training_data, rubric = _PHRASES.match(text, lower, token_set, substrings)
    return cot, training_data, rubric


@lru_cache(maxsize=1024)
def _system_signals(system_window: str) -> tuple[str | None, str | None, str | None, str]:
    """Phrase matches and the hash of a system prompt; cached because accounts resend the same one."""
    lower = system_window.lower()
    is_ascii = lower.isascii()
    substrings = needs_substrings(lower, is_ascii)
    known = _LEXICON.intersection(tokens(lower, is_ascii))
    cot, training_data, rubric = _phrase_signals(system_window, lower, known, substrings)
    # Digits are folded so that an injected date or request counter does not split one client's prompt.
    normalised = " ".join(lower.translate(_DIGIT_TO_ZERO).split())
    return cot, training_data, rubric, hash_hex16(normalised, b"dg-system")


def _logprob_harvest(view: RequestView) -> bool:
    if view.max_tokens is None or view.max_tokens > LOGPROB_HARVEST_MAX_TOKENS or view.top_logprobs is None:
        return False
    # Completions: any integer logprobs (0 already returns the sampled tokens'); chat: at least one alternative.
    return view.top_logprobs >= 0 if view.completions else view.top_logprobs >= 1


def _extract(request: object, endpoint: str) -> RequestSignals:
    view = read_request(request, endpoint)
    text = window(view.text)
    is_ascii = text.isascii()
    lower = text.lower()
    toks, token_bytes = tokens_and_bytes(lower, is_ascii)
    token_set = _LEXICON.intersection(toks)  # the tokens any detector looks up
    substrings = needs_substrings(lower, is_ascii)
    refs: set[tuple[int, int, int]] = set()
    points: list[tuple[int, int]] = []
    patterns: list[tuple[int, DomainPattern]] = []
    languages: list[int] = []
    for word in token_set:
        entry = _WORDS[word]
        refs.update(entry.phrase_refs)
        points += entry.domain_points
        patterns += entry.domain_patterns
        languages += entry.languages

    cot, training_data, rubric = _PHRASES.match_refs(text, lower, refs, token_set, substrings) if text else _NO_MATCH

    system_hash = None
    if view.system.strip():
        sys_cot, sys_td, sys_rubric, system_hash = _system_signals(window(view.system))
        # The user message names the signal when both match: it is the more specific of the two.
        cot = cot or sys_cot
        training_data = training_data or sys_td
        rubric = rubric or sys_rubric

    return RequestSignals(
        cot=cot,
        training_data=training_data,
        rubric=rubric,
        logprob_harvest=_logprob_harvest(view),
        template_id=template_id(text),
        content_sig=simhash_bytes(token_bytes),
        system_prompt_hash=system_hash,
        domain="agentic" if view.tools or view.tool_messages else _DOMAINS.decide(lower, points, patterns, substrings),
        language=detect_language(lower, toks, token_set, is_ascii, languages),
        depth=view.depth,
        user_turns=view.user_turns,
        prompt_chars=view.prompt_chars,
        max_tokens=view.max_tokens,
        n=view.n,
        temperature=view.temperature,
        top_logprobs=view.top_logprobs,
        benchmark=_BENCHMARKS.match(text) if len(text) >= MIN_SEGMENT_CHARS else None,
        tools=view.tools,
    )


_EMPTY_TEMPLATE = template_id("")


def extract(request: Mapping[str, Any], endpoint: str = "/v1/chat/completions") -> RequestSignals:
    """The per-request signals of one OpenAI request body (chat or text completion).

    Total: any input (missing fields, wrong types, garbage, huge prompts) returns signals and never raises. The
    texts analysed are the last user message (or the first completion prompt) and the system/developer messages,
    each cut to its first and last few KB.
    """
    try:
        return _extract(request, endpoint)
    except Exception:  # the request path must not fail on a detector bug; log it and return neutral signals
        log.exception("signal extraction failed; returning neutral signals")
        return RequestSignals(
            cot=None,
            training_data=None,
            rubric=None,
            logprob_harvest=False,
            template_id=_EMPTY_TEMPLATE,
            content_sig=0,
            system_prompt_hash=None,
            domain="general",
            language="und",
            depth=0,
            user_turns=0,
            prompt_chars=0,
            max_tokens=None,
            n=1,
            temperature=None,
            top_logprobs=None,
            benchmark=None,
            tools=False,
        )
