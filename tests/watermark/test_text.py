"""The text watermark: keyed marks that the detector finds with an exact p-value, never where it must not write,
the same streamed as whole, and no false detections."""

from __future__ import annotations

import itertools
import random
from typing import Any

import orjson
import pytest

from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.stats import poisson_binomial_sf
from distillguard.watermark.stream import Ready
from distillguard.watermark.text import Engine, derive_key, detect, mark, sites

KEY = derive_key(b"deployment-secret")
OTHER = derive_key(b"deployment-secret", "account:acme")

ANSWER = """Great question! There are several ways to think about it, and it is not always obvious which one fits.

First, you need to decide what you want to measure. For example, if you are tracking a whole project, it is often
useful to split it into phases. Usually the phases do not overlap, but they can. However, teams frequently skip
this step because they are in a hurry, and that is a mistake that will not go unnoticed.

Second, keep in mind that the numbers are approximately 20 percent off in the first week. Perhaps the data is
incomplete, or maybe the tools are not configured yet. Additionally, someone on the team should make sure that
everyone understands the goal. It's easy to lose track of what matters, especially when there is a lot of noise.

In addition, you should choose metrics that are mostly stable. Moreover, a dashboard allows you to see trends
quickly. Therefore, it is worth spending a bit of time on it at the start. They are not hard to build, and you
will not regret it: nearly every team that does this reports fewer surprises.

Finally, don't forget to review the plan with your manager. In summary, there is no single right answer, but
a clear process certainly helps. Overall, you are on the right track, and anyone can learn this quickly.
Meanwhile, we are happy to help if you have more than 3 questions. Nevertheless, it is your call in the end."""


def test_a_marked_answer_is_detected_with_its_key_only() -> None:
    marked = mark(ANSWER, KEY, "strong")
    assert marked != ANSWER
    found = detect(marked, [KEY])
    assert found.detected and found.hits == found.scored and found.key_id == KEY.key_id
    assert found.p_value <= 1e-6 and found.scored >= 25
    assert not detect(marked, [OTHER]).detected
    # Of several keys held, the one that marked it is named; the p-value pays for the extra tries.
    both = detect(mark(ANSWER, OTHER, "strong"), [KEY, OTHER])
    assert both.detected and both.key_id == OTHER.key_id and both.keys_tried == 8
    assert not detect(ANSWER, [KEY, OTHER]).detected


def test_marks_keep_the_meaning_words_and_layout() -> None:
    marked = mark(ANSWER, KEY, "strong")
    assert marked.count("\n") == ANSWER.count("\n")
    assert abs(len(marked.split()) - len(ANSWER.split())) <= 25
    # Numbers, names and punctuation outside the changed words survive.
    for kept in ("20", "3 questions", "Great question!", "manager."):
        assert kept in marked


@pytest.mark.parametrize(
    "protected",
    [
        "```python\nif x is not None:  # it is not\n    do_not = True\n```",
        "Run `it is not` in a shell.",
        'He said "it is not done" and left.',
        "See https://example.com/it-is-not/often for details.",
        "Write to often.perhaps@example.com today.",
        "The integral is $\\int x \\, dx$ which is not hard.",
    ],
)
def test_code_quotes_urls_and_math_are_never_touched(protected: str) -> None:
    for seed in range(20):
        key = derive_key(b"s", f"account:{seed}")
        marked = mark(protected, key, "strong")
        # The protected span itself is identical (only prose around it may change).
        for span in ("```python\nif x is not None:  # it is not\n    do_not = True\n```", "`it is not`",
                     '"it is not done"', "https://example.com/it-is-not/often", "often.perhaps@example.com",
                     "$\\int x \\, dx$"):  # fmt: skip
            if span in protected:
                assert span in marked


def test_json_answers_and_names_are_left_alone() -> None:
    answer = '{"status": "it is not ready", "often": true}'
    assert all(mark(answer, derive_key(b"s", str(i)), "strong") == answer for i in range(20))
    named = "We met Will Often and Perhaps Smith yesterday."
    assert all(mark(named, derive_key(b"s", str(i)), "strong") == named for i in range(20))


@pytest.mark.parametrize(
    ("text", "untouched"),
    [
        ("Leave it as it is.", "as it is."),  # a contraction needs a word after it
        ("We saw the need to act.", "need to"),  # "the need" is a noun
        ("Talk about the plan.", "about the"),  # "about" varies only before a number
        ("What kind of person", None),  # a site: may change
        ("It's been a long day and that's gone.", "been"),  # "it's been" is "it has been": never "it is been"
        ("You have a car, and we have time.", "have a car"),  # "have" is a verb here: never "you've a car"
    ],
)
def test_grammar_rules_of_the_lexicon(text: str, untouched: str | None) -> None:
    for i in range(20):
        marked = mark(text, derive_key(b"s", str(i)), "strong")
        if untouched is not None:
            assert untouched in marked
        assert " is been" not in marked and " is gone" not in marked and "'ve a " not in marked


def test_contractions_with_i_and_participles_are_sites() -> None:
    text = "Yes, I am sure that you have seen it, and I will check. Each time we have tried, it worked."
    found = {s.cls.variants[0] for s in sites(text)}
    assert {("i", "am"), ("you", "have"), ("i", "will"), ("we", "have"), ("each", "time")} <= found
    changed = {mark(text, derive_key(b"s", str(i)), "standard") for i in range(30)}
    assert any("I'm sure" in m or "I\u2019m sure" in m for m in changed)
    assert any("you've seen" in m or "you\u2019ve seen" in m for m in changed)
    assert any("Every time" in m for m in changed)


def test_streaming_gives_the_same_text_as_whole_and_holds_back_little() -> None:
    whole = mark(ANSWER, KEY, "strong")
    rng = random.Random(7)
    for _ in range(25):
        engine = Engine(KEY, 2)
        out, i, held_max = [], 0, 0
        while i < len(ANSWER):
            j = i + rng.randrange(1, 12)
            out.append(engine.feed(ANSWER[i:j]))
            held_max = max(held_max, len(ANSWER[:j]) - len("".join(out)))
            i = j
        out.append(engine.flush())
        assert "".join(out) == whole
        # At most a phrase is held back (here: under 60 characters) while the stream runs.
        assert held_max < 60


def test_each_context_is_scored_once() -> None:
    sentence = "It is not hard. "
    found = detect(sentence * 200, [KEY])
    assert found.scored <= 4


def test_exact_tail_of_the_poisson_binomial() -> None:
    ks = [2, 2, 3, 4, 4, 2, 3]
    for hits in range(len(ks) + 2):
        brute = 0.0
        for outcome in itertools.product([0, 1], repeat=len(ks)):
            if sum(outcome) >= hits:
                p = 1.0
                for k, o in zip(ks, outcome, strict=True):
                    p *= 1 / k if o else 1 - 1 / k
                brute += p
        assert poisson_binomial_sf(hits, ks) == pytest.approx(brute, rel=1e-9, abs=1e-15)


JUNK = ["", "   ", "\x00\x01\x02\xff" * 50, "这是一个没有英语的句子。" * 30, "1234 5678 " * 100]


@pytest.mark.parametrize("junk", JUNK)
def test_bad_input_is_never_detected(junk: str) -> None:
    found = detect(junk, [KEY])
    assert not found.detected and found.p_value == 1.0


def test_unmarked_texts_are_not_detected_and_p_values_are_not_small() -> None:
    rng = random.Random(3)
    words = ANSWER.split()
    p_values = []
    for i in range(200):
        key = derive_key(b"null", str(i))
        text = " ".join(rng.sample(words, 150))
        p_values.append(detect(text, [key]).p_value)
    assert min(p_values) > 1e-4
    # Conservative tail (discrete statistic): no more small p-values than uniform would give.
    assert sum(p <= 0.05 for p in p_values) <= 0.05 * len(p_values) + 6


def sse_chunks(text: str, rng: random.Random) -> list[dict[str, Any]]:
    out, i = [], 0
    while i < len(text):
        j = i + rng.randrange(1, 9)
        out.append({"id": "c", "choices": [{"index": 0, "delta": {"content": text[i:j]}, "finish_reason": None}]})
        i = j
    out.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


def test_response_watermarker_marks_whole_answers_and_streams_alike() -> None:
    whole = ResponseWatermarker(KEY, "strong", chat=True)
    body = orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]})
    marked = orjson.loads(whole.whole(body))["choices"][0]["message"]["content"]
    assert marked == mark(ANSWER, KEY, "strong") and whole.summary()["changed"] > 0
    streamer = ResponseWatermarker(KEY, "strong", chat=True).stream()
    chunks = sse_chunks(ANSWER, random.Random(1))
    ready: list[Ready] = []
    for chunk in chunks:
        streamer.event(None, chunk, ready)
    assert [c for _, c, _ in ready] == chunks  # every chunk out, in order
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == marked
    # A stream cut off before its finish_reason still delivers the held words at the end.
    cut = ResponseWatermarker(KEY, "strong", chat=True).stream()
    partial = sse_chunks("It is not", random.Random(2))[:-1]
    ready = []
    for chunk in partial:
        cut.event(None, chunk, ready)
    cut.finish(ready, partial[-1])
    sent = "".join((c or {})["choices"][0]["delta"]["content"] for _, c, _ in ready)
    assert sent == mark("It is not", KEY, "strong")
    assert sites("It is not hard")  # the example does contain a site


def test_a_prefix_does_not_hide_a_mark() -> None:
    marked = mark(ANSWER, KEY, "strong")
    for disguised in ("[1] " + marked, "{" + marked, "[[" + marked):
        assert detect(disguised, [KEY]).detected
    # A footnote-style "[1]" opening is prose, and is marked like any answer.
    assert mark("[1] " + ANSWER, KEY, "strong") == "[1] " + marked


def test_amounts_of_money_do_not_switch_marking_off() -> None:
    text = "The ticket costs $5. It is not often cheap. However, it is often fine, and we do not mind."
    engine = Engine(KEY, 2)
    engine.feed(text)
    engine.flush()
    assert len(engine.sites) >= 4 and not engine.state.in_math
    # Inline math ends with its line; display math may span lines.
    assert len(sites("Let $x be\nIt is not often so.")) >= 2
    assert mark("$$\nit is not often\n$$", KEY, "strong") == "$$\nit is not often\n$$"


def test_an_expanded_contraction_reads_back_as_the_same_site() -> None:
    for i in range(40):
        key = derive_key(b"s", str(i))
        marked = mark("I think that isn't available today.", key, "strong")
        found = detect(marked, [key])
        assert found.hits == found.scored and mark(marked, key, "strong") == marked


def test_normalised_apostrophes_do_not_drown_the_word_choices() -> None:
    marked = mark(ANSWER + "\n\n" + ANSWER.replace("Great question!", "Good point."), KEY, "strong")
    normalised = marked.replace("\u2019", "'")
    found = detect(normalised, [KEY])
    assert found.detected and found.hits == found.scored  # the test without apostrophe sites


def test_keys_follow_the_scope_and_the_campaign() -> None:
    from distillguard.config import WatermarkConfig
    from distillguard.watermark.keys import Watermarks

    secret = b"deployment-secret"
    off = Watermarks(WatermarkConfig(), secret)
    assert off.for_call("acme", flagged=False, chat=True) is None
    flagged = off.for_call("acme", flagged=True, chat=True)
    assert flagged is not None and flagged.key.scope == "account:acme" and flagged.strength == "strong"
    member = off.for_call("acme", flagged=True, chat=True, campaign="clu_1")
    assert member is not None and member.key.scope == "cluster:clu_1"
    by_cluster = Watermarks(WatermarkConfig(enabled=True, key_scope="cluster"), secret)
    plain = by_cluster.for_call("bob", flagged=False, chat=False)
    assert plain is not None and plain.key.scope == "account:bob" and plain.strength == "standard"
    assert by_cluster.for_call("bob", False, False, "clu_2").key.scope == "cluster:clu_2"  # type: ignore[union-attr]
    deployment = Watermarks(WatermarkConfig(enabled=True), secret).for_call("bob", False, False, "clu_2")
    assert deployment is not None and deployment.key.scope == "deployment"
    # A leak from any member of the campaign is found with the one cluster key.
    keys = off.keys_for([], ["clu_1"])
    assert detect(mark(ANSWER, member.key, "strong"), keys).key_id == member.key.key_id
