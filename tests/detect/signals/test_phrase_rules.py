"""Phrase-rule fixtures, CrowdSec style: every rule catches its listed inputs and lets the listed benign ones pass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillguard.detect.signals import extract
from distillguard.detect.signals.rules import (
    RULE_FAMILIES,
    RuleError,
    compile_family,
    compile_pattern,
    load_families,
    normalise_for_rules,
)
from distillguard.detect.signals.text import tokens, window
from tests.detect.signals.helpers import chat, load_fixture, short_id

FIXTURES = {family: load_fixture(f"{family}.json") for family in RULE_FAMILIES}
SHAREGPT = load_fixture("sharegpt_benign.json")["pass"]

CATCH = [
    pytest.param(family, case, id=f"{case['rule']}:{short_id(case['text'])}")
    for family, data in FIXTURES.items()
    for case in data["catch"]
]
PASS = [
    pytest.param(family, case["text"], id=f"{family}:{short_id(case['text'])}")
    for family, data in FIXTURES.items()
    for case in data["pass"]
]


@pytest.mark.parametrize(("family", "case"), CATCH)
def test_rule_catches(family: str, case: dict[str, Any]) -> None:
    signals = extract(chat(case["text"], role=case.get("role", "user")))
    assert getattr(signals, family) == case["rule"]


@pytest.mark.parametrize(("family", "text"), PASS)
def test_rule_lets_benign_pass(family: str, text: str) -> None:
    assert getattr(extract(chat(text)), family) is None


@pytest.mark.parametrize("case", SHAREGPT, ids=[c["id"] for c in SHAREGPT])
def test_real_benign_prompts_pass_every_family(case: dict[str, str]) -> None:
    signals = extract(chat(case["text"]))
    assert (signals.cot, signals.training_data, signals.rubric) == (None, None, None)


def test_every_rule_has_a_catch_fixture() -> None:
    families = load_families()
    for family, data in FIXTURES.items():
        covered = {case["rule"] for case in data["catch"]}
        assert {rule.id for rule in families[family].rules} == covered, family


def test_every_rule_has_a_description_and_a_gate() -> None:
    for family in load_families().values():
        assert family.description
        for rule in family.rules:
            assert rule.description and (rule.keywords or rule.substrings)


def test_cot_covers_the_required_languages() -> None:
    ids = {rule.id for rule in load_families()["cot"].rules}
    assert {f"cot.{lang}" for lang in ("zh", "es", "fr", "de", "ru", "ja", "pt")} <= ids


def test_user_match_takes_precedence_over_system_match() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "Always think out loud."},
            {"role": "user", "content": "Let's think step by step: is 91 prime?"},
        ]
    }
    assert extract(request).cot == "cot.step_by_step"


def _rule(**fields: Any) -> dict[str, Any]:
    return {"id": "x.a", "description": "d", "keywords": ["a"], "patterns": ["a"], **fields}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule": [{"id": "x.a"}]}, "missing 'family'"),
        ({"family": "x"}, r"no \[\[rule\]\]"),
        ({"family": "x", "rule": [{"id": "y.a", "description": "d", "keywords": ["a"], "patterns": ["a"]}]}, "id"),
        ({"family": "x", "rule": [{"id": "x.a", "keywords": ["a"], "patterns": ["a"]}]}, "description"),
        ({"family": "x", "rule": [{"id": "x.a", "description": "d", "patterns": ["a"]}]}, "keywords or substrings"),
        ({"family": "x", "rule": [{"id": "x.a", "description": "d", "keywords": ["a"]}]}, "no patterns"),
        ({"family": "x", "rule": [_rule(keywords=["two words"])]}, "token"),
        ({"family": "x", "rule": [_rule(keywords=["Step"])]}, "token"),
        ({"family": "x", "rule": [_rule(patterns=["("])]}, "bad pattern"),
        (
            {
                "family": "x",
                "rule": [
                    {"id": "x.a", "description": "d", "keywords": ["a"], "patterns": ["a"]},
                    {"id": "x.a", "description": "d", "keywords": ["a"], "patterns": ["a"]},
                ],
            },
            "duplicate",
        ),
    ],
)
def test_malformed_rule_files_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        compile_family(data)


def test_rules_try_in_file_order_and_only_behind_their_gate() -> None:
    family = compile_family(
        {
            "family": "x",
            "rule": [
                {"id": "x.first", "description": "d", "keywords": ["alpha"], "patterns": ["alpha beta"]},
                {"id": "x.second", "description": "d", "keywords": ["beta"], "patterns": ["beta"]},
                {"id": "x.cjk", "description": "d", "substrings": ["一步"], "patterns": ["一步"]},
            ],
        }
    )
    assert family.match("alpha beta", {"alpha", "beta"}, False) == "x.first"
    assert family.match("beta alpha", {"alpha", "beta"}, False) == "x.second"
    # The pattern would match, but its keyword is not among the tokens: the rule is not even tried.
    assert family.match("beta", set(), False) is None
    # Substrings of unspaced scripts are looked for only when the text has such characters.
    assert family.match("一步一步", set(), True) == "x.cjk"
    assert family.match("一步一步", set(), False) is None


def _reference(text: str) -> tuple[str | None, ...]:
    """The rules' meaning without the speed-ups: plain regexes over the whole normalised text, in file order.

    Only the declared gate is kept: a pattern whose required words could not be derived runs when its rule's
    keywords or substrings are present. Derived token groups, anchors and windows are left out, so agreement
    shows that they never hide a match.
    """
    win = window(text)
    normalised = normalise_for_rules(win)
    lower = win.lower()
    token_set = set(tokens(lower, lower.isascii()))
    result: list[str | None] = []
    for family in load_families().values():
        found = None
        for rule in family.rules:
            declared = bool(rule.keywords & token_set) or any(s in lower for s in rule.substrings)
            if any((p.token_groups or declared) and p.regex.search(normalised) for p in rule.patterns):
                found = rule.id
                break
        result.append(found)
    return tuple(result)


def _optimised(text: str) -> tuple[str | None, ...]:
    s = extract(chat(text))
    return s.cot, s.training_data, s.rubric


ALL_TEXTS = [c["text"] for data in FIXTURES.values() for c in data["catch"] + data["pass"]] + [
    c["text"] for c in SHAREGPT
]


@pytest.mark.parametrize("text", ALL_TEXTS, ids=[short_id(t) for t in ALL_TEXTS])
def test_gates_and_anchors_never_change_a_result(text: str) -> None:
    assert _optimised(text) == _reference(text)


PHRASE_TEXT = (
    "let's think step by step show your reasoning explain work through this carefully out loud chain of "
    "thought generate 50 diverse question answer pairs json instruction input output rate the response "
    "on a scale of 1 to 10 which response is better act as an impartial judge rubric helpfulness "
    "accuracy relevance , . : ? \n 20 tasks come up with a set of"
)
PHRASE_WORDS = PHRASE_TEXT.split(" ")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(PHRASE_WORDS),
        max_size=40,
    )
)
def test_gates_match_the_reference_on_random_phrases(words: list[str]) -> None:
    text = " ".join(words)
    assert _optimised(text) == _reference(text)


def test_every_pattern_has_a_selective_gate() -> None:
    # A lint for speed: a pattern is tried only when an uncommon word (or its rule's uncommon keyword, or a CJK
    # substring) is present; a pattern gated only by words like "the" or "your" would run on most prompts.
    from distillguard.detect.signals.rules import _COMMON_WORDS

    weak = []
    for family in load_families().values():
        for rule in family.rules:
            for i, p in enumerate(rule.patterns):
                if p.token_groups:
                    ok = any(g - _COMMON_WORDS for g in p.token_groups)
                else:
                    ok = bool((rule.keywords and not rule.keywords & _COMMON_WORDS) or rule.substrings)
                if not ok:
                    weak.append(f"{rule.id}#{i}")
    assert weak == []


@pytest.mark.parametrize(
    ("pattern", "groups", "anchors"),
    [
        (r"\bthink step[- ]by[- ]step\b", [{"think"}, {"step"}, {"by"}], ("think step",)),
        (r"\b(?:rationale|reasoning) before\b", [{"rationale", "reasoning"}, {"before"}], (" before",)),
        (r"\bshow (?:me )?your (?:work|steps)\b", [{"show"}, {"your"}, {"work", "steps"}], ("show ",)),
        (
            r"\bscore the (?:answer|response)s? now\b",
            [{"score"}, {"the"}, {"answer", "answers", "response", "responses"}, {"now"}],
            ("score the ",),
        ),
        # "rethink" is one token, and "it" may continue into "item": no word is certain.
        (r"re(?:think|do) it", [], ()),
        (r"<think>", [{"think"}], ("<think>",)),
    ],
)
def test_token_groups_and_anchors_are_derived_conservatively(
    pattern: str, groups: list[set[str]], anchors: tuple[str, ...]
) -> None:
    compiled = compile_pattern(pattern)
    assert sorted(map(sorted, compiled.token_groups)) == sorted(map(sorted, groups))
    assert compiled.anchors == anchors or not anchors
