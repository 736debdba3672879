"""The spacing channels of the text watermark: one or two spaces between sentences, no trailing space or one at the
end of a line that ends a sentence (or two at the end of a paragraph), no space, one or two on the blank line between
paragraphs. Never inside code or
other protected spans, decided at the boundary when streamed, read back by the detector, and dropped (not counted
as misses) where the text shows one variant only."""

from __future__ import annotations

import random
import re

import orjson
import pytest
from scipy.stats import kstest

from distillguard.watermark.lexicon import (
    APOSTROPHE,
    BLANK_LINE,
    CLASSES,
    FORMATTING,
    LINE_END,
    PARAGRAPH_END,
    SENTENCE_SPACE,
)
from distillguard.watermark.stats import poisson_binomial_sf
from distillguard.watermark.text import Engine, derive_key, detect, mark, score_sites, sites, varied_channels

PROSE = """Rendered Markdown collapses the spaces between two sentences. The reader sees nothing. A model trained on
the raw text sees them all. Short answers have few word choices! Every sentence end is a chance to mark. Is that
enough? It has to be measured.

Each paragraph ends a line. Lines that end a sentence may carry a trailing space.
The space is invisible when rendered. Two would be a hard line break, so the engine never writes two."""

KEYS = [derive_key(b"spacing", f"account:{i}") for i in range(40)]


def test_marking_writes_both_variants_and_the_detector_reads_them_back() -> None:
    written: dict[int, set[int]] = {SENTENCE_SPACE.cid: set(), LINE_END.cid: set()}
    for key in KEYS:
        marked = mark(PROSE, key, "standard")
        assert marked.split() == mark(PROSE, key, "standard").split()  # words unchanged by spacing
        for s in sites(marked):
            if s.cls in (SENTENCE_SPACE, LINE_END):
                written[s.cls.cid].add(s.variant)
        scored = score_sites(sites(marked), key)
        assert scored.hits == len(scored.variants)  # every site the marker wrote is a hit
        assert mark(marked, key, "standard") == marked  # idempotent
    assert written == {SENTENCE_SPACE.cid: {0, 1}, LINE_END.cid: {0, 1}}
    # Never three spaces, never a tab, never two at the end of a line inside a paragraph (a Markdown hard break;
    # at the end of a paragraph, before a blank line, Markdown ignores it).
    for key in KEYS:
        marked = mark(PROSE, key, "strong")
        assert "   " not in marked and "\t" not in marked
        lines = [*marked.splitlines(), ""]
        assert not [
            i for i, line in enumerate(lines[:-1]) if line.strip() and line.endswith("  ") and lines[i + 1].strip()
        ]


def test_spacing_alone_detects_a_short_answer() -> None:
    # 78 words without a single word choice: 26 sentence ends, each after a different word.
    ends = (
        "apples bread cheese dates eggs figs grapes honey icing jam kale lemons mangoes nuts oats pears quinces rice "
        "salt tea udon vanilla walnuts yams zucchini limes"
    )
    answer = " ".join(f"Then wash {w}." for w in ends.split())
    assert not [s for s in sites(answer) if s.cls not in (SENTENCE_SPACE, LINE_END)]
    key = KEYS[0]
    marked = mark(answer, key, "standard")
    found = detect(marked, [key])
    assert found.detected, found
    assert not detect(answer, [key]).detected
    assert not detect(marked, [KEYS[1]]).detected


@pytest.mark.parametrize(
    "protected",
    [
        "```\nThe end. Next line.\nIt works.\n```",
        "Run `x = 1. Then y = 2.` in a shell.",
        'He said "It ends. It starts." and left.',
        "The sum is $a. B$ over there.",
        '{"text": "It ends. Then it starts.\\nA line."}',
    ],
)
def test_spacing_is_never_changed_inside_protected_spans(protected: str) -> None:
    span = re.search(r"```.*```|`[^`]*`|\"[^\"]*\"|\$[^$]*\$|\{.*\}", protected, re.DOTALL)
    assert span is not None
    for key in KEYS:
        assert span.group() in mark(protected, key, "strong")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("We met Dr. Smith. He was kind.", "Dr. Smith"),  # an abbreviation is not a sentence end
        ("See e.g. Python. It is fine.", "e.g. Python"),  # an opaque piece is not a sentence end
        ("It ends. and then goes on.", "ends. and"),  # a lowercase word does not open a sentence
        ("Version 3. Next one.", "3. Next"),  # after a number (a list number "1. Item" must keep its one space)
        ("1. First item.\n2. Second item.", "1. First"),
        ("Hard break.  \nNext line.", ".  \n"),  # two trailing spaces: a Markdown hard break, left alone
        ("A line,\nthen more.", "line,\n"),  # a line that does not end a sentence
        ("name,age\nBob,42\n", "name,age\nBob,42\n"),  # data lines never get a trailing space
    ],
)
def test_where_spacing_is_not_a_site(text: str, kept: str) -> None:
    for key in KEYS:
        assert kept in mark(text, key, "strong")


def test_streaming_decides_spacing_at_the_boundary_and_holds_back_only_whitespace() -> None:
    for key in KEYS[:10]:
        whole = mark(PROSE, key, "standard")
        for seed in range(5):
            rng = random.Random(seed)
            engine = Engine(key, 1)
            out, i = [], 0
            while i < len(PROSE):
                j = i + rng.randrange(1, 6)
                out.append(engine.feed(PROSE[i:j]))
                released = "".join(out)
                assert whole.startswith(released)
                # What is held back is at most the unfinished word or phrase, never a sentence.
                assert len(PROSE[:j].split()) - len(released.split()) <= 3
                i = j
            out.append(engine.flush())
            assert "".join(out) == whole
    # After "ends." and its space, the engine waits for the next word: it decides whether a sentence opens.
    engine = Engine(KEYS[0], 1)
    assert engine.feed("It ends. ") == "It ends."
    assert engine.feed("Then") == ""  # an unfinished word
    rest = engine.feed(" it goes on. ") + engine.flush()
    assert rest in (" Then it goes on. ", "  Then it goes on. ")  # the last space: no sentence follows


def test_normalised_or_single_variant_channels_are_dropped_not_counted_as_misses() -> None:
    text = PROSE + "\n\n" + PROSE.replace("Markdown", "HTML")
    spacing = {SENTENCE_SPACE.cid, LINE_END.cid, PARAGRAPH_END.cid, BLANK_LINE.cid}
    varied_before = 0
    for key in KEYS[:10]:
        marked = mark(text, key, "standard")
        varied_before += {SENTENCE_SPACE.cid, PARAGRAPH_END.cid} <= varied_channels(sites(marked))
        flattened = re.sub(r" +\n", "\n", re.sub(r"(?<=\S)  +(?=\S)", " ", marked))  # whitespace normalised
        assert varied_channels(sites(flattened)) & spacing == set()
        scored = score_sites(sites(flattened), key)
        assert all(s.cls.cid not in spacing for s, _ in scored.agreed)
        assert scored.hits == len(scored.variants)  # what is left (the words) still agrees everywhere
    assert varied_before >= 7  # a marked text shows both variants unless its few sites happen to agree


def test_null_p_values_stay_exact_with_the_channels_and_the_variation_rule() -> None:
    """Unmarked text with a random mix of spacing (some texts varied, some not): the randomized p-value of the
    detector's statistic is uniform, and no text comes near alpha."""
    rng = random.Random(11)
    sentences = [s.strip() + "." for s in re.split(r"\.\s", PROSE.replace("\n", " ")) if s.strip()]
    us, ps = [], []
    for i in range(400):
        picked = rng.sample(sentences, 8)
        text = "".join(s + rng.choice([" ", "  ", "\n", " \n"]) for s in picked).strip()
        if i % 3 == 0:
            text = re.sub(r"  +", " ", text)  # one variant only: the channel is dropped
        key = derive_key(b"null", str(i))
        scored = score_sites(sites(text), key)
        ks = scored.variants
        above = poisson_binomial_sf(scored.hits + 1, ks) if ks else 0.0
        at_least = poisson_binomial_sf(scored.hits, ks) if ks else 1.0
        us.append(above + rng.random() * (at_least - above))
        ps.append(detect(text, [key]).p_value)
    assert kstest(us, "uniform").pvalue > 0.001
    assert min(ps) > 1e-4


def test_class_ids_are_stable() -> None:
    """Class ids are hashed into the keyed choice: texts marked before a class was added still read back."""
    assert [c.cid for c in CLASSES[:92]] == list(range(92))
    assert (APOSTROPHE.cid, SENTENCE_SPACE.cid, LINE_END.cid) == (92, 93, 94)
    assert (BLANK_LINE.cid, PARAGRAPH_END.cid) == (112, 134)
    ids = [c.cid for c in (*CLASSES, *FORMATTING)]
    assert len(set(ids)) == len(ids)  # two classes with one id would share their keyed choices
    assert [c.cid for c in CLASSES[92:109]] == list(range(95, 112))
    assert [c.cid for c in CLASSES[109:]] == list(range(113, 134))
    assert CLASSES[91].variants == (("okay",), ("ok",)) and CLASSES[0].variants == (("do", "not"), ("don't",))


def test_the_spacing_switch_leaves_whitespace_alone() -> None:
    from distillguard.config import WatermarkConfig
    from distillguard.watermark.keys import Watermarks

    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": PROSE}}]}
    spaced = Watermarks(WatermarkConfig(enabled=True), b"k" * 32).for_call("acct", False, True)
    plain = Watermarks(WatermarkConfig(enabled=True, spacing=False), b"k" * 32).for_call("acct", False, True)
    assert spaced is not None and plain is not None
    raw = orjson.dumps(body)
    with_spacing = orjson.loads(spaced.whole(raw))["choices"][0]["message"]["content"]
    words_only = orjson.loads(plain.whole(raw))["choices"][0]["message"]["content"]
    assert re.sub(r"[ \t]+", " ", with_spacing) != with_spacing  # some double or trailing spaces written
    assert [line.rstrip() for line in words_only.splitlines()] == words_only.splitlines()
    assert "  " not in words_only.replace("\n", "")


PARAGRAPHS = """The first paragraph has a few words. It ends here.

The second one follows a blank line.

- a list item
- another item

## A heading

Text after the heading, and a code block:

```
x = 1

y = 2
```

The end."""


def test_blank_lines_between_paragraphs_carry_the_mark_and_code_keeps_its_own() -> None:
    written: set[int] = set()
    ends: set[int] = set()
    for key in KEYS:
        marked = mark(PARAGRAPHS, key, "standard")
        assert [line.split() for line in marked.splitlines()] == [line.split() for line in PARAGRAPHS.splitlines()]
        assert "x = 1\n\ny = 2" in marked  # a blank line inside code is never a site
        written |= {s.variant for s in sites(marked) if s.cls == BLANK_LINE}
        ends |= {s.variant for s in sites(marked) if s.cls == PARAGRAPH_END}
        scored = score_sites(sites(marked), key)
        assert scored.hits == len(scored.variants)
        engine = Engine(key, 1)
        assert "".join(engine.feed(c) for c in marked) + engine.flush() == marked  # idempotent, streamed too
    assert written == ends == {0, 1, 2}
    assert not [s for s in sites("One line.\r\n\r\nWindows line ends.") if s.cls == BLANK_LINE]
    assert not [s for s in sites("\n\n  \nBefore any word.") if s.cls == BLANK_LINE]
    untouched = '{"a": "it is often done.\n\nNext"}\n\n'
    assert all(mark(untouched, key, "strong") == untouched for key in KEYS)  # JSON
