"""The text watermark does not drift: marked outputs, streamed releases, sites and detection results recorded once
(tests/watermark/golden_text.json) must come out the same byte for byte and bit for bit.

A change to the lexicon, the reading rules or the keyed choice changes what old texts read back as, so it must be
deliberate. Regenerate only then, with ``.venv/bin/python tests/watermark/test_text_golden.py --regenerate``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from distillguard.watermark.text import Engine, TextKey, derive_key, detect, score_sites, sites

GOLDEN = Path(__file__).with_name("golden_text.json")
ANSWERS = Path(__file__).resolve().parents[2] / "bench" / "data" / "assistant_answers.md"
SECRET = b"golden-text-watermark-secret"
KEYS = (derive_key(SECRET), derive_key(SECRET, "account:acme"), derive_key(SECRET, "cluster:c7"))
# What is marked: (label, lexicon level, spacing channels).
VARIANTS = (("standard", 1, True), ("strong", 2, True), ("standard-words", 1, False))

EDGE_CASES: dict[str, str] = {
    "empty": "",
    "whitespace only": "  \n\t \n",
    "one word": "often",
    "phrase cut at the end": "There is a lot",
    "code fence": "Do not run this:\n\n```python\nif it is not None:\n    do_not = 'often'\n```\n\nIt is often "
    "fine. However, we are done.  You will see.\n",
    "inline code and math": "Use `do not` and `it is` here; $x$ is often large and $$a it is b$$ too. It is not.",
    "urls and addresses": "See https://example.com/do-not?x=1 and www.often.org. Mail me@often.com, it is often "
    "down. Use snake_case, e.g. this, a/b, x.y and C:\\do\\not. However, that is all.",
    "numbers": "About 5 of them, approximately 5 items, roughly 3.14 and more than 3. It costs $5, nearly 1,000. "
    "1. Item one.  2. Item two.\n3. It is not 4.",
    "quotes": 'He said "do not go, it is often late" and it is often right. She wrote “we are not done” and '
    "«it is often» too. Then it is not.",
    "apostrophes": "It\u2019s the user's book, and it's theirs. Don't worry; we won\u2019t. "
    "The dogs' bowls aren't empty.",
    "spacing": "One sentence.  Two sentence. three lower. Dr. Smith came. It ends here:\nNext line \nA line.\r\n"
    "B line.  \nHard break above.\tTab.   Three spaces. (In brackets.) **Bold.** “Quoted.” End.",
    "openers": "However, it is good. For example, we are done. In the end, it is. On the other hand, that is "
    "fine. First of all, to do so, you need to wait. As mentioned, in short, it works.",
    "names and capitals": "Will Not and Do Not are names. Mr. Often went there. It Is Not. IT IS NOT.",
    "long phrases": "Due to the fact that it is raining, we stay. Whether or not you agree, in order to win, we "
    "need to try. The need to win is large, such as the whole team.",
    "json object": '{"answer": "it is often not done", "ok": true}',
    "json array": '[{"x": "do not"}]',
    "bracket note": "[1] It is often said that we are not done. However, it is fine.",
    "unicode": "Naïve café — it is often fine… We are not sure. Çà, it\u2019s ok. 中文 it is often here.",
    "crlf and lists": "- It is often good.\r\n- We are not done.\r\n* However, it is.\r\n> Quoted it is not.\r\n",
    "repeats": "It is not. " * 30,
}


def answers() -> dict[str, str]:
    """The assistant-style answers of bench/data/assistant_answers.md (the benchmark's own reading)."""
    sections = ANSWERS.read_text(encoding="utf-8").split("\n=== ")[1:]
    return {f"answer {i}": s.split("\n", 1)[1].strip() for i, s in enumerate(sections)}


def texts() -> dict[str, str]:
    return {**EDGE_CASES, **answers()}


def _sha(value: Any) -> str:
    data = value.encode() if isinstance(value, str) else json.dumps(value, ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()


def _pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 12)
        out.append(text[i : i + n])
        i += n
    return out


def _detection(text: str, keys: tuple[TextKey, ...]) -> dict[str, Any]:
    d = detect(text, list(keys))
    return {
        "key_id": d.key_id,
        "scored": d.scored,
        "hits": d.hits,
        "expected": d.expected,
        "p_value": d.p_value,
        "keys_tried": d.keys_tried,
    }


def record(text: str) -> dict[str, Any]:
    """Everything the golden file keeps of one text."""
    found = sites(text)
    out: dict[str, Any] = {
        "sites": _sha([[s.cls.cid, s.variant, s.context] for s in found]),
        "detect_1": _detection(text, KEYS[:1]),
        "detect_3": _detection(text, KEYS),
    }
    for label, level, spacing in VARIANTS:
        for k, key in enumerate(KEYS[:2]):
            engine = Engine(key, level, spacing)
            marked = engine.feed(text) + engine.flush()
            stream = Engine(key, level, spacing)
            released = [stream.feed(p) for p in _pieces(text, k)] + [stream.flush()]
            scored = score_sites(sites(marked), key)
            out[f"{label}/{k}"] = {
                "marked": marked if len(text) < 400 else _sha(marked),
                "changed": [engine.changed, engine.changed_spacing, engine.words, len(engine.sites)],
                "sites": _sha([[s.cls.cid, s.variant, s.context] for s in engine.sites]),
                "stream": _sha(released),
                "score": [scored.hits, scored.variants],
                "detect_1": _detection(marked, (key,)),
                "detect_3": _detection(marked, KEYS),
                "detect_bracket": _detection("[" + marked, (key,)),
            }
    return out


def regenerate() -> None:
    GOLDEN.write_text(
        json.dumps({name: record(t) for name, t in texts().items()}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


GOLDEN_RECORDS: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}


def test_golden_file_covers_every_text() -> None:
    assert set(GOLDEN_RECORDS) == set(texts())


@pytest.mark.parametrize("name", sorted(texts()))
def test_marking_and_detection_are_unchanged(name: str) -> None:
    expected = GOLDEN_RECORDS[name]
    got = record(texts()[name])
    for part in expected:
        assert got[part] == expected[part], part


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_streamed_one_character_at_a_time_equals_the_golden_output(name: str) -> None:
    text = EDGE_CASES[name]
    for label, level, spacing in VARIANTS:
        engine = Engine(KEYS[0], level, spacing)
        streamed = "".join(engine.feed(c) for c in text) + engine.flush()
        assert streamed == GOLDEN_RECORDS[name][f"{label}/0"]["marked"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--regenerate"]:
        regenerate()
    else:
        print(__doc__)
