"""Benchmark of the text watermark (distillguard.watermark.text): false positives, detection, meaning, speed.

    .venv/bin/python bench/watermark_text.py --corpus /work/shared/data      # from the repository root

(``--corpus`` defaults to ``../shared/data`` next to the repository; without it the script says so and exits 0.)
Figures go to bench/results/watermark_text.json; docs/watermark.md quotes them.

Text used (none of it is model output: there is no LLM answer corpus here):

- ``pydoc``: the prose of Python's own reference documentation (``pydoc_data.topics.topics`` in the standard
  library), cut into paragraphs; indented blocks (code, grammar) and heading underlines are dropped, and the hard
  line breaks inside a paragraph are joined;
- ``alpaca``: the human-written outputs of the 175 Alpaca / self-instruct seed tasks, concatenated (each line a
  paragraph);
- ``sharegpt``: the 2,861 real human first turns of ShareGPT conversations (prompts, with code, quotes and URLs),
  each a text of its own (false positives and consistency checks only);
- ``answers``: ten assistant-style answers of 320 to 360 words in Markdown (headings, bold lead-ins, lists, em
  dashes, a code block), written by an LLM (Claude) for this benchmark (bench/data/assistant_answers.md), with
  their own line structure kept: the only model output here, and a small sample of one model's style;
- ``gsm8k``: the 1,319 GSM8K test questions (human-written; many use two spaces after a sentence), null tests only.

What is measured:

1. Null hypothesis (texts never marked): each text is tested with a fresh random key (several keys per chunk for
   pydoc/alpaca/answers; given the text, keys are independent). ``detect(text, [key])`` gives the false positives
   at p <= 1e-6; ``score_sites`` (what ``detect`` scores, at level 2, formatting channels included where the text
   varies them) gives a randomized p-value U = P(X > h) + V * P(X = h), V ~ U(0, 1), from the same exact
   Poisson-binomial distribution. U is uniform under the null; a Kolmogorov-Smirnov test and its deciles check it.
2. Detection: windows of N words at random offsets, a fresh key per trial, marked at each strength (and at standard
   without the spacing channels, "standard, words only"), then detected with ``detect(marked, [key])`` (4 tests:
   both lexicon levels, with and without the formatting channels), clean and after 10% / 25% random word edits. An
   edit hits a whitespace-delimited word (with any punctuation attached) chosen at random without replacement, and
   is, with equal chance, a replacement by a random word of the corpus (drawn by frequency), a deletion, or the
   insertion of a random corpus word before it. Also: detection after every curly apostrophe is made straight,
   after whitespace is normalised (runs of spaces collapsed, trailing spaces removed), after both, and after one
   character ("[" or "{") is put in front of the text.
3. Meaning: words changed per 100 words (word-level diff of the original and the marked text), spacing changes per
   100 words (invisible in the word diff), and examples.
4. Speed: ``mark`` whole and streamed (``Engine.feed`` in 4-character pieces, like SSE deltas, and in token-sized
   deltas: a leading space and up to five letters, or one punctuation mark, as a BPE tokenizer cuts them), and
   ``detect`` with 1 and 10 keys; and what the watermark adds to the gateway's streaming path
   (bench/watermark_stream.py: OpenAI chat chunks of one token-sized delta, handled as the gateway's relay does,
   watermark off and on). Tokens are counted as whitespace words x 1.3 (per-word figures are given too).
5. Consistency: streamed output equals whole-text output; a marked text scores a hit at every site at its level;
   marking is idempotent; code fences and URLs come out unchanged (failures are counted, with examples).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import platform
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

from rich.console import Console
from rich.table import Table
from scipy.stats import kstest

from distillguard.watermark.result import DEFAULT_ALPHA
from distillguard.watermark.stats import poisson_binomial_sf
from distillguard.watermark.text import (
    LEVELS,
    Engine,
    Site,
    Strength,
    TextKey,
    derive_key,
    detect,
    mark,
    score_sites,
    sites,
)
from watermark_stream import STREAM_KEY, added_cpu
from watermark_stream import table as stream_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "watermark_text.json"
TOKENS_PER_WORD = 1.3
STRENGTHS: tuple[Strength, ...] = ("standard", "strong")
# What is marked in the detection runs: (label, lexicon level, spacing channels).
VARIANTS: tuple[tuple[str, int, bool], ...] = (
    ("standard", 1, True),
    ("standard, words only", 1, False),
    ("strong", 2, True),
)
EDIT_RATES = (0.0, 0.10, 0.25)
LENGTHS = {
    "answers": (100, 200, 300, 600, 1000, 2000),
    "pydoc": (100, 300, 600, 1000, 2000, 4000, 8000, 16000),
    "alpaca": (100, 300, 600, 1000, 2000),
}
ANSWERS = ROOT / "bench" / "data" / "assistant_answers.md"
TARGET_WORDS = 300
TARGET_RATE = 0.90

console = Console(width=None if sys.stdout.isatty() else 160)


# corpora ----------------------------------------------------------------------------------------------
@dataclass
class Corpus:
    name: str
    text: str  # the whole corpus, whitespace as it is to be marked

    def __post_init__(self) -> None:
        self.spans = [m.span() for m in re.finditer(r"\S+", self.text)]
        self.words = [self.text[a:b] for a, b in self.spans]

    def window(self, start: int, n: int) -> str:
        """Words [start, start + n) with the whitespace between them as it is in the corpus."""
        end = min(start + n, len(self.spans)) - 1
        return self.text[self.spans[start][0] : self.spans[end][1]]

    def chunks(self, n: int) -> list[str]:
        """Consecutive, non-overlapping windows of n words (the incomplete tail dropped)."""
        return [self.window(s, n) for s in range(0, len(self.words) - n + 1, n)]

    def vocabulary(self) -> list[str]:
        """The corpus's words (letters only), with repetitions: sampling from it samples by frequency."""
        return [w for w in (re.sub(r"[^A-Za-z'\u2019]", "", x) for x in self.words) if w]


def _corpus(name: str, paragraphs: Sequence[str]) -> Corpus:
    """Paragraphs as one text: single spaces inside a paragraph, a blank line between paragraphs."""
    return Corpus(name, "\n\n".join(" ".join(p.split()) for p in paragraphs))


def assistant_answers() -> list[str]:
    """The assistant-style answers of bench/data/assistant_answers.md (each after a line starting "=== ")."""
    sections = ANSWERS.read_text(encoding="utf-8").split("\n=== ")[1:]
    return [section.split("\n", 1)[1].strip() for section in sections]


def pydoc_prose() -> list[str]:
    """Paragraphs of prose of the Python reference documentation (stdlib pydoc_data), code blocks dropped."""
    paragraphs: list[str] = []
    for name in sorted(topics):
        block: list[str] = []
        for line in [*topics[name].splitlines(), ""]:
            stripped = line.strip()
            if not stripped or line[0].isspace() or re.fullmatch(r"[*=\-^~+]+", stripped):
                if block:
                    paragraphs.append(" ".join(block))
                block = []
                continue
            block.append(stripped)
    return [p for p in paragraphs if len(p.split()) >= 8]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def alpaca_outputs(corpus: Path) -> list[str]:
    lines: list[str] = []
    for task in _jsonl(corpus / "alpaca_seed_tasks.jsonl"):
        for instance in task["instances"]:
            lines.extend(x.strip() for x in instance["output"].splitlines() if x.strip())
    return lines


def sharegpt_prompts(corpus: Path) -> list[str]:
    return [str(r["prompt"]) for r in _jsonl(corpus / "sharegpt_first_turns.jsonl")]


def gsm8k_questions(corpus: Path) -> list[str]:
    return [str(r["question"]) for r in _jsonl(corpus / "gsm8k_test.jsonl")]


_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")
_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


def normalise_whitespace(text: str) -> str:
    """What a cleaning step does: runs of spaces collapsed to one, trailing spaces removed on every line."""
    return _TRAILING.sub("", _SPACES.sub(" ", text))


def normalise_apostrophes(text: str) -> str:
    return text.replace("\u2019", "'")


def randomized_p(hits: int, ks: Sequence[int], v: float) -> float:
    """U = P(X > h) + V * P(X = h): uniform on (0, 1) under the null for a discrete X."""
    at_least = poisson_binomial_sf(hits, ks) if ks else (1.0 if hits <= 0 else 0.0)
    above = poisson_binomial_sf(hits + 1, ks) if ks else 0.0
    return above + v * (at_least - above)


def new_key(rng: random.Random) -> TextKey:
    return derive_key(rng.randbytes(32), "deployment")


# 1. the null --------------------------------------------------------------------------------------------
def null_test(name: str, texts: Sequence[str], keys_per_text: int, rng: random.Random) -> dict[str, Any]:
    us: list[float] = []
    us_with_sites: list[float] = []
    ps: list[float] = []
    words = 0
    no_sites = 0
    for text in texts:
        words += len(text.split())
        found = sites(text)
        for k in range(keys_per_text):
            key = new_key(rng)
            scored = score_sites(found, key)  # level 2, formatting channels where the text varies them
            if not scored.variants and k == 0:
                no_sites += 1
            u = randomized_p(scored.hits, scored.variants, rng.random())
            us.append(u)
            if scored.variants:
                us_with_sites.append(u)
            ps.append(detect(text, [key]).p_value)
    ks_all = kstest(us, "uniform")
    ks_sites = kstest(us_with_sites, "uniform") if us_with_sites else None
    deciles = statistics.quantiles(us, n=10, method="inclusive")
    return {
        "corpus": name,
        "texts": len(texts),
        "keys_per_text": keys_per_text,
        "tests": len(us),
        "words": words,
        "texts_without_sites": no_sites,
        "false_positives": sum(p <= DEFAULT_ALPHA for p in ps),
        "min_p": min(ps),
        "detect_p_le_0.05": round(sum(p <= 0.05 for p in ps) / len(ps), 4),
        "detect_p_le_0.01": round(sum(p <= 0.01 for p in ps) / len(ps), 4),
        "randomized_p_le_0.05": round(sum(u <= 0.05 for u in us) / len(us), 4),
        "randomized_p_le_0.01": round(sum(u <= 0.01 for u in us) / len(us), 4),
        "ks_statistic": round(float(ks_all.statistic), 4),
        "ks_pvalue": round(float(ks_all.pvalue), 4),
        "ks_statistic_texts_with_sites": round(float(ks_sites.statistic), 4) if ks_sites else None,
        "ks_pvalue_texts_with_sites": round(float(ks_sites.pvalue), 4) if ks_sites else None,
        "tests_texts_with_sites": len(us_with_sites),
        "deciles": [round(d, 3) for d in deciles],
    }


# 2. detection -------------------------------------------------------------------------------------------
_PIECE = re.compile(r"\S+")


def edit(text: str, rate: float, vocabulary: Sequence[str], rng: random.Random) -> str:
    """Random word edits at ``rate`` of the words: replace, delete or insert (equal chances)."""
    if rate <= 0:
        return text
    spans = [m.span() for m in _PIECE.finditer(text)]
    chosen = set(rng.sample(range(len(spans)), round(rate * len(spans))))
    out: list[str] = []
    last = 0
    for index, (start, end) in enumerate(spans):
        out.append(text[last:start])
        last = end
        if index not in chosen:
            out.append(text[start:end])
            continue
        op = rng.randrange(3)
        if op == 0:
            out.append(rng.choice(vocabulary))
        elif op == 1:
            pass  # deleted (its separating whitespace stays)
        else:
            out.append(rng.choice(vocabulary) + " " + text[start:end])
    out.append(text[last:])
    return "".join(out)


def detection_row(
    name: str, texts: Callable[[], str], count: int, vocabulary: Sequence[str], rng: random.Random
) -> list[dict[str, Any]]:
    """``count`` trials per marking variant, each on ``texts()`` with a fresh key: clean, edited, normalised."""
    rows = []
    for label, level, spacing in VARIANTS:
        detected = dict.fromkeys(EDIT_RATES, 0)
        p_values: dict[float, list[float]] = {r: [] for r in EDIT_RATES}
        normalised = dict.fromkeys(("apostrophes", "whitespace", "both"), 0)
        scored: list[int] = []
        changed: list[int] = []
        words: list[int] = []
        for _ in range(count):
            text = texts()
            words.append(len(text.split()))
            key = new_key(rng)
            engine = Engine(key, level, spacing)
            marked = engine.feed(text) + engine.flush()
            changed.append(engine.changed)
            normalised["apostrophes"] += detect(normalise_apostrophes(marked), [key]).detected
            normalised["whitespace"] += detect(normalise_whitespace(marked), [key]).detected
            both = normalise_whitespace(normalise_apostrophes(marked))
            normalised["both"] += detect(both, [key]).detected
            for rate in EDIT_RATES:
                result = detect(edit(marked, rate, vocabulary, rng), [key])
                detected[rate] += result.detected
                p_values[rate].append(result.p_value)
                if rate == 0:
                    scored.append(result.scored)
        n = statistics.median(words)
        rows.append(
            {
                "corpus": name,
                "strength": label,
                "words": n,
                "trials": count,
                "median_scored": statistics.median(scored),
                "median_scored_per_100_words": round(100 * statistics.median(scored) / n, 2),
                "median_rewritten": statistics.median(changed),
                "detection_rate": {f"{r:.0%}": round(detected[r] / count, 3) for r in EDIT_RATES},
                "detection_rate_normalised": {k: round(v / count, 3) for k, v in normalised.items()},
                "median_log10_p": {
                    f"{r:.0%}": round(math.log10(max(statistics.median(p_values[r]), 1e-300)), 2) for r in EDIT_RATES
                },
            }
        )
    return rows


def detection_curve(corpus: Corpus, rng: random.Random, trials: Callable[[int], int]) -> list[dict[str, Any]]:
    """Windows of N words at random offsets, for each N of the corpus's lengths."""
    vocabulary = corpus.vocabulary()
    rows = []
    for n in LENGTHS[corpus.name]:
        if n > len(corpus.words):
            continue

        def window(n: int = n) -> str:
            return corpus.window(rng.randrange(len(corpus.words) - n + 1), n)

        for row in detection_row(corpus.name, window, trials(n), vocabulary, rng):
            rows.append({**row, "words": n, "disjoint_windows": len(corpus.words) // n})
    return rows


def whole_texts(name: str, texts: Sequence[str], trials: int, rng: random.Random) -> list[dict[str, Any]]:
    """Each text whole (an answer as the model wrote it, from its first word), a fresh key per trial."""
    vocabulary = Corpus(name, "\n\n".join(texts)).vocabulary()
    rows = detection_row(name, lambda: rng.choice(texts), trials, vocabulary, rng)
    return [{**row, "disjoint_windows": len(texts), "whole": True} for row in rows]


def units(found: Sequence[Site], level: int, formatting: bool = True) -> int:
    """Distinct (class, previous word) sites at a level: what a marked text can score (a marked text varies its
    formatting channels; the unmarked text measured here usually does not, which is why this is not score_sites)."""
    return len({(s.cls.cid, s.context) for s in found if s.cls.level <= level and (formatting or not s.cls.formatting)})


def capacity(name: str, texts: Sequence[str]) -> dict[str, Any]:
    """Sites per 100 words in texts never marked: every site, and those detect scores (distinct) per level."""
    words = sum(len(t.split()) for t in texts)
    per_text: list[list[Site]] = []
    prose = 0
    for text in texts:
        engine = Engine()
        engine.feed(text)
        engine.flush()
        per_text.append(engine.sites)
        prose += engine.words
    raw = sum(len(f) for f in per_text)
    out: dict[str, Any] = {"corpus": name, "texts": len(texts), "words": words}
    # The share of words the engine reads as prose (the rest is code, quotes, URLs, math, JSON: never marked).
    out["prose_share"] = round(prose / words, 3)
    out["sites_per_100_words"] = round(100 * raw / words, 2)
    for strength, level in LEVELS.items():
        scored = [units(f, level) for f in per_text]
        out[f"scored_per_100_words_{strength}"] = round(100 * sum(scored) / words, 2)
        rates = [100 * s / len(t.split()) for s, t in zip(scored, texts, strict=True) if t.split()]
        out[f"median_scored_per_100_words_{strength}"] = round(statistics.median(rates), 2)
        words_only = [units(f, level, formatting=False) for f in per_text]
        out[f"scored_words_only_per_100_words_{strength}"] = round(100 * sum(words_only) / words, 2)
    classes = Counter(" / ".join(repr(" ".join(v)) for v in s.cls.variants) for f in per_text for s in f)
    out["top_classes"] = dict(classes.most_common(12))
    return out


# 3. meaning ---------------------------------------------------------------------------------------------
def diff(before: str, after: str) -> tuple[int, list[tuple[str, str]]]:
    """Words changed (word-level diff) and the changed phrases."""
    a, b = before.split(), after.split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    changed = 0
    pairs = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        changed += max(i2 - i1, j2 - j1)
        pairs.append((" ".join(a[i1:i2]), " ".join(b[j1:j2])))
    return changed, pairs


def meaning(corpora: Sequence[tuple[str, Sequence[str]]], rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for strength in STRENGTHS:
        level = LEVELS[strength]
        rows = {}
        for name, texts in corpora:
            words = changed_words = rewritten = apostrophe_only = spacing = 0
            for text in texts:
                engine = Engine(new_key(rng), level)
                marked = engine.feed(text) + engine.flush()
                count, pairs = diff(text, marked)
                words += len(text.split())
                changed_words += count
                rewritten += engine.changed
                spacing += engine.changed_spacing
                apostrophe_only += sum(x.replace("\u2019", "'") == y.replace("\u2019", "'") for x, y in pairs)
            rows[name] = {
                "words": words,
                "words_changed_per_100": round(100 * changed_words / words, 2),
                "sites_rewritten_per_100_words": round(100 * rewritten / words, 2),
                "apostrophe_only_changes_per_100_words": round(100 * apostrophe_only / words, 2),
                "spacing_changes_per_100_words": round(100 * spacing / words, 2),
            }
        out[strength] = rows
    return out


def visible_spacing(text: str) -> str:
    """Two spaces between sentences shown as "␣␣", a trailing space before a line break as "·"."""
    return re.sub(r" (?=\n)", "\u00b7", re.sub(r"(?<=\S)  (?=\S)", "\u2423\u2423", text))


def examples(paragraphs: Sequence[str], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Three short paragraphs per strength with at least two changed phrases, the same key for all."""
    key = derive_key(b"bench-watermark-examples", "deployment")
    rng = random.Random(seed)
    pool = [p for p in paragraphs if 25 <= len(p.split()) <= 70]
    rng.shuffle(pool)
    out: dict[str, list[dict[str, Any]]] = {}
    for strength in STRENGTHS:
        picked: list[dict[str, Any]] = []
        for text in pool:
            marked = mark(text, key, strength)
            _, pairs = diff(text, marked)
            words_changed = any(x.replace("\u2019", "'") != y.replace("\u2019", "'") for x, y in pairs)
            if len(pairs) >= 2 and words_changed and all(text != e["before"] for xs in out.values() for e in xs):
                picked.append(
                    {
                        "before": text,
                        "after": marked,
                        "after_spacing_shown": visible_spacing(marked),
                        "changes": [f"{x} -> {y}" for x, y in pairs],
                    }
                )
            if len(picked) == 3:
                break
        out[strength] = picked
    return out


# 4. speed -----------------------------------------------------------------------------------------------
def _median_time(fn: Callable[[], object], reps: int) -> float:
    # CPU time of this process, not wall-clock: on a shared machine, time spent waiting for a core is not ours.
    fn()
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def _streamed(text: str, key: TextKey, level: int, piece: int = 4) -> str:
    engine = Engine(key, level)
    out = [engine.feed(text[i : i + piece]) for i in range(0, len(text), piece)]
    out.append(engine.flush())
    return "".join(out)


_TOKEN_DELTA = re.compile(r" ?[^\W\d_]{1,5}| ?\d{1,3}| ?[^\w\s]|\s+|.", re.DOTALL)


def token_deltas(text: str) -> list[str]:
    """Deltas the size of tokens: a leading space and up to five letters (or three digits, or one mark)."""
    return _TOKEN_DELTA.findall(text)


def _streamed_deltas(deltas: Sequence[str], key: TextKey, level: int) -> str:
    engine = Engine(key, level)
    out = [engine.feed(delta) for delta in deltas]
    out.append(engine.flush())
    return "".join(out)


def speed(texts: dict[str, str], rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    key = new_key(rng)
    keys10 = [new_key(rng) for _ in range(10)]
    for name, text in texts.items():
        words = len(text.split())
        tokens = words * TOKENS_PER_WORD
        row: dict[str, Any] = {"text": name, "words": words, "tokens": round(tokens)}
        for strength in STRENGTHS:
            level = LEVELS[strength]
            whole = _median_time(partial(mark, text, key, strength), 25)
            streamed = _median_time(partial(_streamed, text, key, level), 9)
            row[f"mark_{strength}_ms_per_1k_tokens"] = round(1000 * whole / tokens * 1000, 3)
            row[f"mark_{strength}_ms_per_1k_words"] = round(1000 * whole / words * 1000, 3)
            row[f"stream4_{strength}_ms_per_1k_tokens"] = round(1000 * streamed / tokens * 1000, 3)
            row[f"stream4_{strength}_ms_per_1k_words"] = round(1000 * streamed / words * 1000, 3)
            by_token = _median_time(partial(_streamed_deltas, token_deltas(text), key, level), 9)
            row[f"streamtok_{strength}_ms_per_1k_tokens"] = round(1000 * by_token / tokens * 1000, 3)
        one = _median_time(partial(detect, text, [key]), 15)
        ten = _median_time(partial(detect, text, keys10), 15)
        row["detect_1_key_tokens_per_s"] = round(tokens / one)
        row["detect_10_keys_tokens_per_s"] = round(tokens / ten)
        row["detect_1_key_words_per_s"] = round(words / one)
        row["detect_10_keys_words_per_s"] = round(words / ten)
        rows.append(row)
    return rows


# 5. consistency -----------------------------------------------------------------------------------------
_FENCE = re.compile(r"```.*?```", re.DOTALL)
_URL = re.compile(r"https?://\S+")


def consistency(texts: Sequence[str], rng: random.Random) -> dict[str, Any]:
    counts = Counter[str]()
    failures: dict[str, list[str]] = {}

    def fail(kind: str, text: str) -> None:
        counts[kind] += 1
        failures.setdefault(kind, [])
        if len(failures[kind]) < 3:
            failures[kind].append(text[:300])

    for text in texts:
        key = new_key(rng)
        for strength in STRENGTHS:
            level = LEVELS[strength]
            counts["checked"] += 1
            marked = mark(text, key, strength)
            if _streamed(text, key, level) != marked:
                fail(f"stream != whole ({strength})", text)
            if _streamed_deltas(token_deltas(text), key, level) != marked:
                fail(f"token-sized stream != whole ({strength})", text)
            scored = score_sites(sites(marked), key).restricted(level)
            counts[f"sites scored ({strength})"] += len(scored.variants)
            counts[f"sites not a hit ({strength})"] += len(scored.variants) - scored.hits
            if scored.hits != len(scored.variants):
                fail(f"marked site not a hit ({strength})", text)
            if mark(marked, key, strength) != marked:
                fail(f"not idempotent ({strength})", text)
            if _FENCE.findall(text) != _FENCE.findall(marked) or _URL.findall(text) != _URL.findall(marked):
                fail(f"code fence or URL changed ({strength})", text)
        if text.lstrip()[:1] in ("[", "{"):
            counts["texts starting with [ or { (read as JSON: never marked, nothing scored)"] += 1
    return {"counts": dict(counts), "examples": failures}


def prefix_attack(corpus: Corpus, n: int, count: int, rng: random.Random) -> dict[str, Any]:
    """Detection of marked windows as they are, and with one character put in front ("[" or "{")."""
    found = dict.fromkeys(("as marked", "'[' + text", "'{' + text"), 0)
    for _ in range(count):
        key = new_key(rng)
        marked = mark(corpus.window(rng.randrange(len(corpus.words) - n + 1), n), key, "standard")
        found["as marked"] += detect(marked, [key]).detected
        found["'[' + text"] += detect("[" + marked, [key]).detected
        found["'{' + text"] += detect("{" + marked, [key]).detected
    return {
        "corpus": corpus.name,
        "words": n,
        "trials": count,
        "detection_rate": {k: v / count for k, v in found.items()},
    }


# report -------------------------------------------------------------------------------------------------
def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _print(figures: dict[str, Any]) -> None:
    table = Table(title="capacity: sites per 100 words (unmarked text; scored = distinct (class, previous word))")
    for c in (
        "corpus", "texts", "words", "prose", "all sites", "scored standard", "of which words", "scored strong",
        "of which words", "median/text std",
    ):  # fmt: skip
        table.add_column(c, justify="right")
    for r in figures["capacity"]:
        table.add_row(
            r["corpus"],
            f"{r['texts']:,}",
            f"{r['words']:,}",
            f"{r['prose_share']:.1%}",
            f"{r['sites_per_100_words']}",
            f"{r['scored_per_100_words_standard']}",
            f"{r['scored_words_only_per_100_words_standard']}",
            f"{r['scored_per_100_words_strong']}",
            f"{r['scored_words_only_per_100_words_strong']}",
            f"{r['median_scored_per_100_words_standard']}",
        )
    console.print(table)

    table = Table(title="null: unmarked text, fresh random keys (detect FP at p <= 1e-6; KS of randomized p)")
    for c in (
        "corpus", "texts", "keys/text", "tests", "no sites", "FP", "min p", "p<=.05", "U<=.05", "U<=.01",
        "KS D", "KS p", "KS p (sites>0)",
    ):  # fmt: skip
        table.add_column(c, justify="right")
    for r in figures["null"]:
        table.add_row(
            r["corpus"],
            f"{r['texts']:,}",
            f"{r['keys_per_text']}",
            f"{r['tests']:,}",
            f"{r['texts_without_sites']:,}",
            f"{r['false_positives']}",
            f"{r['min_p']:.2g}",
            f"{r['detect_p_le_0.05']:.3f}",
            f"{r['randomized_p_le_0.05']:.3f}",
            f"{r['randomized_p_le_0.01']:.3f}",
            f"{r['ks_statistic']:.4f}",
            f"{r['ks_pvalue']:.3f}",
            f"{r['ks_pvalue_texts_with_sites']:.3f}" if r["ks_pvalue_texts_with_sites"] is not None else "-",
        )
    console.print(table)
    table = Table(title="null: deciles of the randomized p-value (uniform: 0.1 ... 0.9)")
    table.add_column("corpus")
    for i in range(1, 10):
        table.add_column(f"q{i}0", justify="right")
    for r in figures["null"]:
        table.add_row(r["corpus"], *(f"{d:.3f}" for d in r["deciles"]))
    console.print(table)

    table = Table(title="detection rate at p <= 1e-6 (one key, detect() with 4 tests), clean and after random edits")
    for c in (
        "corpus", "marked", "words", "trials", "disjoint", "scored", "scored/100w", "rewritten", "clean",
        "10% edits", "25% edits", "' normalised", "ws normalised", "both", "med log10 p",
    ):  # fmt: skip
        table.add_column(c, justify="right")
    for r in figures["detection"]:
        rate = r["detection_rate"]
        table.add_row(
            r["corpus"],
            r["strength"],
            f"{r['words']:,g}",
            f"{r['trials']}",
            f"{r['disjoint_windows']}",
            f"{r['median_scored']:g}",
            f"{r['median_scored_per_100_words']}",
            f"{r['median_rewritten']:g}",
            f"{rate['0%']:.1%}",
            f"{rate['10%']:.1%}",
            f"{rate['25%']:.1%}",
            *(f"{r['detection_rate_normalised'][k]:.1%}" for k in ("apostrophes", "whitespace", "both")),
            f"{r['median_log10_p']['0%']}",
        )
    console.print(table)
    table = Table(title=f"shortest tested length with >= {TARGET_RATE:.0%} detection (target: {TARGET_WORDS} words)")
    for c in ("corpus", "strength", "clean", "10% edits", "25% edits", f"rate at {TARGET_WORDS} words"):
        table.add_column(c, justify="right")
    for r in figures["reach"]:
        table.add_row(
            r["corpus"],
            r["strength"],
            *(str(r["words_for_90pct"][k] or "not reached") for k in ("0%", "10%", "25%")),
            f"{r['rate_at_target']:.1%}",
        )
    console.print(table)

    table = Table(title="meaning: changes per 100 words (word-level diff)")
    for c in (
        "strength", "corpus", "words", "words changed/100", "sites rewritten/100", "apostrophe-only/100",
        "spacing/100",
    ):  # fmt: skip
        table.add_column(c, justify="right")
    for strength, rows in figures["meaning"].items():
        for name, r in rows.items():
            table.add_row(
                strength,
                name,
                f"{r['words']:,}",
                f"{r['words_changed_per_100']}",
                f"{r['sites_rewritten_per_100_words']}",
                f"{r['apostrophe_only_changes_per_100_words']}",
                f"{r['spacing_changes_per_100_words']}",
            )
    console.print(table)
    for strength, items in figures["examples"].items():
        for e in items:
            console.print(f"[bold]{strength}[/bold]: " + "; ".join(e["changes"]), highlight=False)

    table = Table(title=f"speed (one core, medians; tokens = words x {TOKENS_PER_WORD}) on {figures['cpu']}")
    for c in (
        "text", "words", "mark std ms/1k tok", "mark strong ms/1k tok", "stream4 std ms/1k tok",
        "stream4 strong ms/1k tok", "streamtok std ms/1k tok", "mark std ms/1k words", "detect 1 key tok/s",
        "detect 10 keys tok/s",
    ):  # fmt: skip
        table.add_column(c, justify="right")
    for r in figures["speed"]:
        table.add_row(
            r["text"],
            f"{r['words']:,}",
            f"{r['mark_standard_ms_per_1k_tokens']}",
            f"{r['mark_strong_ms_per_1k_tokens']}",
            f"{r['stream4_standard_ms_per_1k_tokens']}",
            f"{r['stream4_strong_ms_per_1k_tokens']}",
            f"{r['streamtok_standard_ms_per_1k_tokens']}",
            f"{r['mark_standard_ms_per_1k_words']}",
            f"{r['detect_1_key_tokens_per_s']:,}",
            f"{r['detect_10_keys_tokens_per_s']:,}",
        )
    console.print(table)
    console.print(stream_table(figures["gateway_stream"]))
    console.print(f"consistency: {figures['consistency']['counts']}", highlight=False)
    console.print(f"prefix attack: {figures['prefix_attack']}", highlight=False)
    console.print(f"run time {figures['seconds']} s", highlight=False)


def reach(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in ("answers, whole", *LENGTHS):
        for strength, _, _ in VARIANTS:
            mine = sorted(
                (r for r in rows if r["corpus"] == name and r["strength"] == strength), key=lambda r: r["words"]
            )
            if not mine:
                continue
            first: dict[str, int | None] = {}
            for k in ("0%", "10%", "25%"):
                first[k] = next((r["words"] for r in mine if r["detection_rate"][k] >= TARGET_RATE), None)
            # Whole answers (about 300 to 360 words each) stand for "a single answer of 300 words".
            at = next((r["detection_rate"]["0%"] for r in mine if r["words"] == TARGET_WORDS or r.get("whole")), 0.0)
            out.append({"corpus": name, "strength": strength, "words_for_90pct": first, "rate_at_target": at})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument(
        "--trials", type=int, default=300, help="detection trials per (length, strength) up to 2,000 words"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    corpus_dir: Path = args.corpus
    needed = ("sharegpt_first_turns.jsonl", "alpaca_seed_tasks.jsonl", "gsm8k_test.jsonl")
    if not all((corpus_dir / f).is_file() for f in needed):
        print(f"no corpus at {corpus_dir} (needs {', '.join(needed)}); skipping the text watermark benchmark")
        return
    started = time.perf_counter()
    rng = random.Random(args.seed)
    pydoc_paragraphs = pydoc_prose()
    alpaca_lines = alpaca_outputs(corpus_dir)
    prompts = sharegpt_prompts(corpus_dir)
    questions = gsm8k_questions(corpus_dir)
    answer_texts = assistant_answers()
    pydoc = _corpus("pydoc", pydoc_paragraphs)
    alpaca = _corpus("alpaca", alpaca_lines)
    answers = Corpus("answers", "\n\n".join(answer_texts))
    console.print(
        f"pydoc prose: {len(pydoc_paragraphs):,} paragraphs, {len(pydoc.words):,} words; alpaca outputs: "
        f"{len(alpaca.words):,} words; answers: {len(answer_texts)} answers, {len(answers.words):,} words; "
        f"sharegpt: {len(prompts):,} prompts, {sum(len(p.split()) for p in prompts):,} words; "
        f"gsm8k: {len(questions):,} questions",
        highlight=False,
    )

    cap = [
        capacity("answers (300-word chunks)", answers.chunks(300)),
        capacity("pydoc (300-word chunks)", pydoc.chunks(300)),
        capacity("alpaca (300-word chunks)", alpaca.chunks(300)),
        capacity("sharegpt prompts", prompts),
        capacity("gsm8k questions", questions),
    ]
    null = [
        null_test("sharegpt prompts", prompts, 1, rng),
        null_test("gsm8k questions", questions, 1, rng),
        null_test("answers 300 words", answers.chunks(300), 200, rng),
        null_test("pydoc 300 words", pydoc.chunks(300), 25, rng),
        null_test("pydoc 1000 words", pydoc.chunks(1000), 60, rng),
        null_test("alpaca 300 words", alpaca.chunks(300), 100, rng),
        null_test("alpaca 1000 words", alpaca.chunks(1000), 300, rng),
    ]
    trials: Callable[[int], int] = lambda n: args.trials if n <= 2000 else max(50, args.trials // 3)  # noqa: E731
    detection = whole_texts("answers, whole", answer_texts, args.trials, rng)
    detection += [*detection_curve(answers, rng, trials), *detection_curve(pydoc, rng, trials)]
    detection += detection_curve(alpaca, rng, trials)
    meaning_rows = meaning(
        [("answers", answers.chunks(300)), ("pydoc", pydoc.chunks(300)), ("alpaca", alpaca.chunks(300))], rng
    )
    answer_paragraphs = [p for a in answer_texts for p in a.split("\n\n")]
    shown = examples(answer_paragraphs + pydoc_paragraphs + alpaca_lines, args.seed)
    speed_texts = {
        "answers 1000 words": answers.window(0, 1000),
        "pydoc 1000 words": pydoc.window(5000, 1000),
        "alpaca 1000 words": alpaca.window(2000, 1000),
        "pydoc 4000 words": pydoc.window(10000, 4000),
    }
    speed_rows = speed(speed_texts, rng)
    # A fixed key: the random keys of the sections after this one stay as they were.
    stream_rows = added_cpu({name: token_deltas(text) for name, text in speed_texts.items()}, STREAM_KEY)
    prefix = prefix_attack(pydoc, 4000, 50, rng)
    checks = consistency([*prompts, *answer_texts, *pydoc.chunks(300), *alpaca.chunks(300)], rng)
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "seed": args.seed,
        "command": ".venv/bin/python bench/watermark_text.py --corpus /work/shared/data",
        "conventions": {
            "tokens_per_word": TOKENS_PER_WORD,
            "alpha": DEFAULT_ALPHA,
            "detection": "detect(text, [key]): one key, 4 tests (both lexicon levels, with and without the "
            "formatting channels), Bonferroni x4",
            "edits": "each chosen word (whitespace-delimited, punctuation attached): replaced by a random corpus word, "
            "deleted, or preceded by an inserted random corpus word, with equal chances; words drawn by frequency",
            "windows": "detection windows start at random word offsets, a fresh key per trial; "
            "'disjoint' = how many non-overlapping windows of that length the corpus has",
            "text": "pydoc_data.topics prose and Alpaca seed-task outputs (human-written), and ten assistant-style "
            "answers written by one LLM for the benchmark (bench/data/assistant_answers.md)",
            "whitespace_normalised": "runs of spaces or tabs after a non-space collapsed to one space, trailing "
            "spaces removed on every line",
        },
        "corpora": {
            "pydoc": {"paragraphs": len(pydoc_paragraphs), "words": len(pydoc.words)},
            "alpaca": {"lines": len(alpaca_lines), "words": len(alpaca.words)},
            "sharegpt": {"prompts": len(prompts), "words": sum(len(p.split()) for p in prompts)},
        },
        "capacity": cap,
        "null": null,
        "detection": detection,
        "reach": reach(detection),
        "meaning": meaning_rows,
        "examples": shown,
        "speed": speed_rows,
        "gateway_stream": stream_rows,
        "targets": {
            "target_300_words_90pct": {
                r["strength"] + "/" + r["corpus"]: r["rate_at_target"] for r in reach(detection)
            },
            "mark_ms_per_1k_tokens_max": 1.0,
            "gateway_added_ms_per_1k_tokens_max": 1.0,
            "detect_tokens_per_s_min": 1_000_000,
        },
        "consistency": checks,
        "prefix_attack": prefix,
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _print(figures)


if __name__ == "__main__":
    main()
