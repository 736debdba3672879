"""Signals computed from the prompt text: template, language, domain, benchmark membership."""

from __future__ import annotations

import itertools

import pytest

from distillguard.detect.signals import DOMAINS, extract
from distillguard.detect.signals.benchmarks import (
    MIN_SEGMENT_CHARS,
    BenchmarkIndex,
    decode_index,
    encode_index,
    load_index,
    segment_keys,
    segments,
)
from distillguard.detect.signals.domain import compile_domains, load_domains
from distillguard.detect.signals.rules import RuleError
from distillguard.detect.signals.template import skeleton, template_id
from tests.detect.signals.helpers import FIXTURES, chat, load_fixture, short_id

TEMPLATES = load_fixture("templates.json")
LANGUAGES = load_fixture("language.json")["cases"]
DOMAIN_CASES = load_fixture("domains.json")["cases"]
BENCHMARKS = load_fixture("benchmarks.json")
SHAREGPT = load_fixture("sharegpt_benign.json")["pass"]


@pytest.mark.parametrize("group", list(TEMPLATES["groups"]))
def test_one_template_with_different_fillers_shares_an_id(group: str) -> None:
    ids = {extract(chat(text)).template_id for text in TEMPLATES["groups"][group]}
    assert len(ids) == 1, [skeleton(t) for t in TEMPLATES["groups"][group]]


def test_unrelated_prompts_do_not_share_template_ids() -> None:
    unrelated = [extract(chat(t)).template_id for t in TEMPLATES["unrelated"]]
    groups = {extract(chat(texts[0])).template_id for texts in TEMPLATES["groups"].values()}
    assert len(set(unrelated)) == len(unrelated)
    assert not set(unrelated) & groups
    assert len(groups) == len(TEMPLATES["groups"])


def test_real_prompts_keep_distinct_templates() -> None:
    ids = [template_id(c["text"]) for c in SHAREGPT]
    assert len(set(ids)) == len(ids)


def test_template_id_format_and_noise_tolerance() -> None:
    a = template_id("Think out loud:   how does a compiler work?\n\n")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a == template_id("think out loud: How do magnets work?")
    assert template_id("") == extract({}).template_id


def test_masks_keep_apostrophes_and_sentence_starts() -> None:
    assert skeleton("Let's see what Paris offers, don't you think?") == "let's see what \x00 offers, don't you think?"


@pytest.mark.parametrize("case", LANGUAGES, ids=[f"{c['lang']}:{short_id(c['text'])}" for c in LANGUAGES])
def test_language(case: dict[str, str]) -> None:
    assert extract(chat(case["text"])).language == case["lang"]


@pytest.mark.parametrize("case", DOMAIN_CASES, ids=[f"{c['domain']}:{short_id(c['text'])}" for c in DOMAIN_CASES])
def test_domain(case: dict[str, str]) -> None:
    assert extract(chat(case["text"])).domain == case["domain"]


def test_every_domain_is_a_known_name_and_general_is_last() -> None:
    assert DOMAINS[-1] == "general"
    assert {r.name for r in load_domains().rules} == set(DOMAINS) - {"general"}
    for case in DOMAIN_CASES:
        assert case["domain"] in DOMAINS


def test_domain_rule_file_validation() -> None:
    with pytest.raises(RuleError, match="domain name"):
        compile_domains({"domain": [{"name": "astrology", "description": "d"}]})
    with pytest.raises(RuleError, match="bad pattern"):
        compile_domains(
            {"domain": [{"name": "code", "description": "d", "pattern": [{"triggers": ["x"], "regex": "("}]}]}
        )
    with pytest.raises(RuleError, match="triggers and a regex"):
        compile_domains({"domain": [{"name": "code", "description": "d", "pattern": [{"regex": "x"}]}]})


CATCH = BENCHMARKS["catch"]
PASS = BENCHMARKS["pass"]


@pytest.mark.parametrize("case", CATCH, ids=[f"{c['benchmark']}:{c['wrapper']}" for c in CATCH])
def test_benchmark_test_items_match_in_their_harness(case: dict[str, str]) -> None:
    assert extract(chat(case["text"])).benchmark == case["benchmark"]


@pytest.mark.parametrize("case", PASS, ids=[f"{c['wrapper']}:{short_id(c['text'])}" for c in PASS])
def test_train_items_and_ordinary_prompts_do_not_match(case: dict[str, str]) -> None:
    assert extract(chat(case["text"])).benchmark is None


def test_benchmark_matching_in_text_completions() -> None:
    humaneval = next(c["text"] for c in CATCH if c["benchmark"] == "humaneval")
    assert extract({"prompt": humaneval}, "/v1/completions").benchmark == "humaneval"


def test_shipped_index_is_compact_and_covers_the_four_benchmarks() -> None:
    path = FIXTURES.parent.parent.parent.parent / "src/distillguard/detect/signals/data/benchmarks.bin"
    assert path.stat().st_size < 200_000
    assert load_index().names() == {"gsm8k", "humaneval", "mbpp", "wizardlm"}


def test_index_round_trip_and_first_name_wins() -> None:
    a = segment_keys("The quick brown fox jumps over the lazy dog near the river bank.")
    index = decode_index(encode_index({"one": a, "two": a | {(7, 7)}}))
    assert index.names() == {"one", "two"}
    assert index.match("Question: the quick brown fox jumps over the lazy dog near the river bank!") == "one"
    assert index.match("The quick brown fox jumps over the lazy dog near the river bend.") is None
    with pytest.raises(ValueError, match="not a distillguard"):
        decode_index(b"garbage")
    with pytest.raises(ValueError, match="trailing"):
        decode_index(encode_index({"one": a}) + b"\0")


def test_segments_are_normalised_and_long_enough() -> None:
    found = list(segments("Q: Short one?\n1. Tom has 3 red apples and 4 green apples in his basket; how many?"))
    # The sentence (list marker split off by its period), its line, and the paragraph of both lines; "Short one?"
    # alone is too short to be a segment.
    assert found == [
        b"tom has 3 red apples and 4 green apples in his basket how many",
        b"1 tom has 3 red apples and 4 green apples in his basket how many",
        b"short one 1 tom has 3 red apples and 4 green apples in his basket how many",
    ]
    assert all(len(s) >= MIN_SEGMENT_CHARS for s in found)
    assert BenchmarkIndex({}).match("anything at all, long enough to be a segment of a prompt") is None


def test_typographic_punctuation_is_folded() -> None:
    assert list(segments("Janet\u2019s ducks lay sixteen eggs per day \u2014 every single day.")) == list(
        segments("Janet's ducks lay sixteen eggs per day - every single day.")
    )


def test_segment_cap_bounds_work_on_many_lines() -> None:
    lines = "\n".join(f"line {i} is a reasonably long line of ordinary text, nothing else" for i in range(10_000))
    assert next(itertools.islice(segments(lines), 0, None)) is not None
    assert extract(chat(lines)).benchmark is None
