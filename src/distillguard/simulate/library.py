"""Where prompts come from: the built-in procedural content, or the real public corpora when given.

``ContentLibrary(None)`` needs nothing on disk. ``ContentLibrary(path)`` reads the corpora described in
``../shared/data/README.md``: ShareGPT first turns for casual chat; the TEST sets of GSM8K, HumanEval, MBPP+ and
the WizardLM test set for evaluation runs; GSM8K train questions and the Alpaca seed tasks for harvesters; the real
Alpaca generation prompt for self-instruct; WizardLM instructions as evol-instruct seeds. Missing files fall back to
procedural content one by one, so a partial corpus directory works.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from distillguard.simulate import benchmarks, content
from distillguard.simulate.benchmarks import Benchmark
from distillguard.simulate.rng import derive_rng

# Very long pasted documents exist in ShareGPT; beyond this they add bytes, not realism.
_MAX_PROMPT_CHARS = 12_000


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


class ContentLibrary:
    def __init__(self, corpus: Path | None = None) -> None:
        self.corpus = corpus
        self._sharegpt: tuple[str, ...] = ()
        self._train: tuple[str, ...] = ()
        self._seeds: tuple[tuple[str, str, str], ...] = ()
        self._evol_seeds: tuple[str, ...] = ()
        self.self_instruct_header = content.SELF_INSTRUCT_PROMPT
        self._benchmarks = {name: benchmarks.procedural(name) for name in benchmarks.NAMES}
        if corpus is not None:
            self._load(corpus)

    def _load(self, root: Path) -> None:
        if (path := root / "sharegpt_first_turns.jsonl").exists():
            self._sharegpt = tuple(r["prompt"] for r in _jsonl(path) if 0 < len(r["prompt"]) <= _MAX_PROMPT_CHARS)
        if (path := root / "gsm8k_train.jsonl").exists():
            self._train = tuple(r["question"] for r in _jsonl(path))
        if (path := root / "alpaca_seed_tasks.jsonl").exists():
            self._seeds = tuple(
                (r["instruction"], r["instances"][0]["input"] or "<noinput>", r["instances"][0]["output"])
                for r in _jsonl(path)
            )
        if (path := root / "alpaca_generation_prompt.txt").exists():
            self.self_instruct_header = path.read_text(encoding="utf-8").rstrip() + "\n"
        if (path := root / "wizardlm_testset.jsonl").exists():
            rows = _jsonl(path)
            self._evol_seeds = tuple(r["Instruction"] for r in rows)
            self._benchmarks["wizardlm"] = Benchmark("wizardlm", "instruction", self._evol_seeds)
        if (path := root / "gsm8k_test.jsonl").exists():
            self._benchmarks["gsm8k"] = Benchmark("gsm8k", "math", tuple(r["question"] for r in _jsonl(path)))
        if (path := root / "humaneval.jsonl").exists():
            self._benchmarks["humaneval"] = Benchmark("humaneval", "code", tuple(r["prompt"] for r in _jsonl(path)))
        if (path := root / "mbppplus.json").exists():
            tasks = orjson.loads(path.read_bytes())
            self._benchmarks["mbpp"] = Benchmark("mbpp", "code", tuple(str(v) for v in tasks.values()))

    @property
    def uses_corpus(self) -> bool:
        return bool(self._sharegpt or self._train or self._seeds or self._evol_seeds)

    def benchmark(self, name: str) -> Benchmark:
        return self._benchmarks[name]

    def chat_opening(self, rng: random.Random, lang: str) -> str:
        """A casual first turn: a real ShareGPT prompt most of the time when available (they are mostly English)."""
        if self._sharegpt and (lang == "en" or rng.random() < 0.15) and rng.random() < 0.75:
            return self._sharegpt[rng.randrange(len(self._sharegpt))]
        return content.casual_opening(rng, lang)

    def train_question(self, rng: random.Random) -> str:
        """Training-split material (never the test split: harvesters want data to train on)."""
        if self._train:
            return self._train[rng.randrange(len(self._train))]
        return content.math_word_problem(rng)

    def harvest_question(self, rng: random.Random) -> str:
        """Broad material for harvesters: encyclopaedic questions, word problems, seed-task instructions."""
        roll = rng.random()
        if roll < 0.2:
            return self.train_question(rng)
        if roll < 0.3 and self._seeds:
            return self._seeds[rng.randrange(len(self._seeds))][0]
        if roll < 0.45:
            return content.novel_question(rng)
        return content.broad_question(rng)

    def seed_tasks(self, rng: random.Random, k: int) -> list[tuple[str, str, str]]:
        if self._seeds:
            return rng.sample(self._seeds, min(k, len(self._seeds)))
        return [content.seed_task(rng) for _ in range(k)]

    def evol_seed(self, rng: random.Random) -> str:
        if self._evol_seeds and rng.random() < 0.6:
            return self._evol_seeds[rng.randrange(len(self._evol_seeds))]
        if self._seeds and rng.random() < 0.5:
            return self._seeds[rng.randrange(len(self._seeds))][0]
        return self.harvest_question(rng)

    def sweep_item(self, source: str, index: int) -> str:
        """Item ``index`` of a sweep source, the same for every caller (so campaign members can split it).

        Sources: ``gsm8k-train`` (the training questions), ``topics`` (the procedural question space walked in
        a fixed order), ``seeds`` (seed-task instructions).
        """
        if source == "gsm8k-train" and self._train:
            return self._train[index % len(self._train)]
        if source == "seeds" and self._seeds:
            return self._seeds[index % len(self._seeds)][0]
        rng = derive_rng("sweep", source, index)
        if source == "gsm8k-train":
            return content.math_word_problem(rng)
        return content.grid_question(rng, index)
