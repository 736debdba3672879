"""Property tests: extract() is total, and SimHash behaves like a locality-sensitive hash."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillguard.detect.signals import RequestSignals, extract
from distillguard.detect.signals.simhash import hamming, simhash
from distillguard.detect.signals.text import tokens
from tests.detect.signals.helpers import load_fixture

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=200)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
contents = st.text(max_size=400) | st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=200)}) | json_values, max_size=4
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | st.text(max_size=8)},
        optional={"content": contents | json_values, "tool_calls": json_values},
    )
    | json_values,
    max_size=6,
)
request_keys = st.sampled_from(
    ["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "n", "temperature", "logprobs",
     "top_logprobs", "tools", "functions", "_unparsed"]
)  # fmt: skip
requests = st.dictionaries(request_keys, json_values, max_size=8) | st.fixed_dictionaries(
    {"messages": messages},
    optional={
        "max_tokens": json_values,
        "n": json_values,
        "temperature": json_values,
        "logprobs": json_values,
        "top_logprobs": json_values,
        "tools": json_values,
    },
)


def check_valid(signals: RequestSignals) -> None:
    assert 0 <= signals.content_sig < 2**64
    assert len(signals.template_id) == 16
    assert signals.n >= 1 and signals.depth >= 0 and signals.user_turns >= 0 and signals.prompt_chars >= 0


# caplog is function-scoped, so it spans all examples: fine here, any record from any example fails the test.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=requests | json_values, endpoint=st.sampled_from(["/v1/chat/completions", "/v1/completions", ""]))
def test_extract_is_total(request: Any, endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        check_valid(extract(request, endpoint))
    # Total by construction, not by the safety net: the fallback path must never have been needed.
    assert not caplog.records


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1, max_size=3000))
def test_extract_is_total_on_arbitrary_text(text: str) -> None:
    check_valid(extract({"messages": [{"role": "system", "content": text}, {"role": "user", "content": text}]}))
    check_valid(extract({"prompt": text}, "/v1/completions"))


def test_lone_surrogates_and_nul_bytes() -> None:
    check_valid(extract({"messages": [{"role": "user", "content": "\ud800 think step by step \x00 \udfff"}]}))


def test_huge_prompts_are_analysed_in_a_bounded_window() -> None:
    body = "word " * 400_000
    s = extract({"messages": [{"role": "user", "content": "Let's think step by step.\n" + body}]})
    assert s.cot == "cot.step_by_step" and s.prompt_chars == len(body) + 26
    tail = extract({"messages": [{"role": "user", "content": body + "\nExplain your reasoning before answering."}]})
    assert tail.cot == "cot.show_reasoning"


def _sig(text: str) -> int:
    return simhash(tokens(text.lower(), text.isascii()))


GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
words = st.lists(st.sampled_from(GREEK), min_size=1)


@given(st.lists(st.text(min_size=1, max_size=12), max_size=60))
def test_simhash_is_a_deterministic_64_bit_value(toks: list[str]) -> None:
    assert 0 <= simhash(toks) < 2**64
    assert simhash(toks) == simhash(list(toks))


@given(words)
def test_simhash_of_the_same_text_is_identical(toks: list[str]) -> None:
    assert hamming(simhash(toks), simhash(list(toks))) == 0


@settings(max_examples=50)
@given(st.randoms(use_true_random=False))
def test_one_word_changed_in_a_long_text_moves_few_bits(rnd: random.Random) -> None:
    vocab = [f"w{i}" for i in range(5000)]
    toks = [rnd.choice(vocab) for _ in range(120)]
    edited = list(toks)
    edited[rnd.randrange(len(edited))] = "replacement"
    assert hamming(simhash(toks), simhash(edited)) <= 12


def test_unrelated_texts_are_about_32_bits_apart() -> None:
    texts = [c["text"] for c in load_fixture("sharegpt_benign.json")["pass"]]
    sigs = [_sig(t) for t in texts]
    distances = [hamming(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    mean = sum(distances) / len(distances)
    assert 28 <= mean <= 36
    assert min(distances) >= 10


def test_near_duplicates_are_close() -> None:
    a = _sig("Generate 50 question/answer pairs about photosynthesis in JSON format for my study group, please.")
    b = _sig("Generate 50 question/answer pairs about volcanoes in JSON format for my study group, please.")
    assert hamming(a, b) <= 16
    assert hamming(a, _sig("What is the capital of France?")) > 16


def test_simhash_edge_cases() -> None:
    assert simhash([]) == 0
    assert extract({"messages": [{"role": "user", "content": ""}]}).content_sig == 0
    assert 0 <= simhash(["solo"]) < 2**64
    assert hamming(-1, 2**64 - 1) == 0  # signed and unsigned forms of the same bits
