"""Streaming the text watermark: whatever the deltas (single characters, 4-character SSE deltas, token-sized deltas
with a leading space, random bursts with empty ones), the releases add up to the text marked whole, the sites and
counters are the same, and nothing more than a phrase is held back. The short ways ``Engine.feed`` takes for known
pieces (plain words, phrase starts, sentence ends, replayed punctuation) must agree with the token machine."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillguard.watermark import text as text_module
from distillguard.watermark.text import Engine, TextKey, derive_key, mark, score_sites, sites

ANSWERS = Path(__file__).resolve().parents[2] / "bench" / "data" / "assistant_answers.md"
KEY = derive_key(b"streaming", "account:acme")
# Pieces that exercise every rule: sites, phrase starts, sentence ends, protected spans, numbers, line breaks.
FRAGMENTS = [
    "It is", "it's been", "do not", "don't", "However,", "For example,", "often", "a lot of", "due to the fact that",
    "in order to", "such as", "the whole", "need to", "the need to", "about 5", "approximately 5", "is not", "I am",
    "I have seen", "you have a", "each time", "That said,", "exactly", ".", ". ", ".  ", "!", "?", ":", ":\n", "\n",
    "\n\n", "\n \n", "\n  \n", "\r\n", " \n", "\t", "   ", " ", " ", " ", "`", "```", "```python\n", "$", "$$", "$5",
    "3.14", "1.", "2. ", '"', "\u201c", "\u201d", "(", ")", "**", "*", "- ", "> ", "[", "{", "]", "}",
    "https://example.com/x", "me@x.com", "e.g.", "a/b", "snake_case", "Dr.", "etc.", "Will", "IT", "there is",
    "we are", "the", "and", "of", "to", "in", "word", "done", "Next", "next", "\u2014", "\u00e9t\u00e9", ",", ";",
]  # fmt: skip


def _answers() -> list[str]:
    sections = ANSWERS.read_text(encoding="utf-8").split("\n=== ")[1:]
    return [s.split("\n", 1)[1].strip() for s in sections]


def _run(
    key: TextKey | None, level: int, deltas: list[str]
) -> tuple[list[str], list[tuple[int, int, str]], tuple[int, ...]]:
    engine = Engine(key, level)
    released = [engine.feed(d) for d in deltas] + [engine.flush()]
    found = [(s.cls.cid, s.variant, s.context) for s in engine.sites]
    return released, found, (engine.changed, engine.changed_spacing, engine.words)


def _whole(key: TextKey | None, level: int, text: str) -> tuple[str, list[tuple[int, int, str]], tuple[int, ...]]:
    released, found, counts = _run(key, level, [text])
    return "".join(released), found, counts


def _token_deltas(text: str) -> list[str]:
    """Deltas like a BPE tokenizer's: a leading space and a few letters, digits or one punctuation mark."""
    return re.findall(r" ?[^\W\d_]{1,5}| ?\d{1,3}| ?[^\w\s]|\s+|.", text, re.DOTALL)


def test_answers_streamed_in_sse_sized_deltas_equal_the_whole_answer() -> None:
    for text in _answers():
        for level in (1, 2):
            marked, found, counts = _whole(KEY, level, text)
            for deltas in ([text[i : i + 4] for i in range(0, len(text), 4)], _token_deltas(text)):
                assert "".join(deltas) == text
                released, streamed_sites, streamed_counts = _run(KEY, level, deltas)
                assert "".join(released) == marked
                assert streamed_sites == found and streamed_counts == counts


def test_the_caches_cleared_every_few_pieces_change_no_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caches of pieces, deltas, whitespace runs and replayed effects are cleared when they grow large; read with a
    limit so small that they are cleared all the time, every release, site and counter is what it was."""
    runs = []
    for text in _answers()[:4]:
        for deltas in ([text], [text[i : i + 4] for i in range(0, len(text), 4)], _token_deltas(text)):
            for key, level in ((KEY, 1), (KEY, 2), (None, 2)):
                runs.append((key, level, deltas))
    expected = [_run(key, level, deltas) for key, level, deltas in runs]
    monkeypatch.setattr(text_module, "_PLAIN_MAX", 8)
    assert [_run(key, level, deltas) for key, level, deltas in runs] == expected


def test_a_plain_word_is_released_with_its_space_and_a_phrase_start_waits_for_one_word() -> None:
    engine = Engine(KEY, 1)
    assert engine.feed("The ") == "The "
    assert engine.feed("cat ") == "cat "
    assert engine.feed("is ") == ""  # may be "is not" / "isn't"
    assert engine.feed("fine ") == "is fine "
    assert engine.feed("but") == ""  # an unfinished word
    assert engine.feed(" it ") == "but "  # "it" may be "it is" / "it's"


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=40),
    gaps=st.lists(st.sampled_from(["", " ", " ", "\n"]), min_size=40, max_size=40),
    seed=st.integers(0, 2**32 - 1),
    level=st.sampled_from([1, 2]),
)
def test_any_chunking_gives_the_whole_text_and_its_sites(
    parts: list[str], gaps: list[str], seed: int, level: int
) -> None:
    text = "".join(p + g for p, g in zip(parts, gaps, strict=False))
    rng = random.Random(seed)
    key = derive_key(b"streaming", str(seed % 7))
    marked, found, counts = _whole(key, level, text)
    read, read_sites, _ = _whole(None, 2, text)  # the detector's reading
    assert read == text
    chunkings = [list(text), [text[i : i + 4] for i in range(0, len(text), 4)], _token_deltas(text)]
    deltas, i = [], 0
    while i < len(text):
        n = rng.choice([0, 1, 2, 3, 5, 8, 13])
        deltas.append(text[i : i + n])
        i += n
    chunkings.append(deltas)
    for deltas in chunkings:
        released, streamed_sites, streamed_counts = _run(key, level, deltas)
        assert "".join(released) == marked
        assert (streamed_sites, streamed_counts) == (found, counts)
        assert _run(None, 2, deltas)[1] == read_sites
    reader = Engine(key, level)
    reader.feed(text)
    if reader.state.json:
        return  # read as JSON when marking: never marked
    scored = score_sites(sites(marked), key).restricted(level)
    assert scored.hits == len(scored.variants)  # every site the marker wrote reads back as a hit
    assert mark(marked, key, "standard" if level == 1 else "strong") == marked  # idempotent
