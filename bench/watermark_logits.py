"""Benchmark of the logits-watermark detectors (distillguard.watermark.greenlist and .synthid), on one core.

    python bench/watermark_logits.py            # about 2 minutes; figures go to bench/results/watermark_logits.json
    python bench/watermark_logits.py --quick    # smaller corpora, to check the script

Corpus: synthetic token ids with a Zipf(1.07) frequency over the vocabulary (ranks shuffled over the ids), cut into
documents of 500 tokens: a stand-in for model output whose cost depends only on how many distinct contexts it has.

- green list, lefthash (transformers' default): detection of 1M tokens cold (a new detector: every new context token
  needs its green list drawn, with the numpy engine and with torch's randperm) and warm (the same key again: green
  lists cached), document by document and in one call; vocabularies of 32,000 (Llama 2) and 50,257 (GPT-2);
- green list, selfhash (context width 4): every position has its own seed, so cold detection draws one green list
  per scored token;
- SynthID (30 depths, n-grams of 5): no per-seed cost, one pass;
- transformers' own WatermarkDetector on a slice of the corpus, for comparison (needs the [hf] extra);
- calibration under the null hypothesis (uniform random tokens, which do not depend on the key): the share of
  documents at p <= alpha, which an exact p-value keeps at or below alpha;
- power: detection rate at p <= 1e-6 of synthetic watermarked text (each token green with probability 0.5 instead
  of 0.25) by length.

numpy's kernels here are single-threaded; torch is set to one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.watermark.greenlist import GreenListWatermark
from distillguard.watermark.logits import LogitsWatermark, derive_key
from distillguard.watermark.synthid import SynthIDWatermark

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "watermark_logits.json"
DOC_TOKENS = 500
SECRET = b"benchmark secret"


def zipf_corpus(vocab_size: int, tokens: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.07
    ids = rng.permutation(vocab_size)[rng.choice(vocab_size, tokens, p=weights / weights.sum())]
    return [ids[i : i + DOC_TOKENS] for i in range(0, tokens, DOC_TOKENS)]


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def detect_all(wm: LogitsWatermark, docs: list[np.ndarray]) -> None:
    for doc in docs:
        wm.detect(doc)


def greenlist_case(vocab_size: int, tokens: int, engines: list[str]) -> dict[str, Any]:
    docs = zipf_corpus(vocab_size, tokens)
    total = sum(len(d) for d in docs)
    key = derive_key(SECRET, "bench")
    out: dict[str, Any] = {"vocab_size": vocab_size, "tokens": total, "documents": len(docs)}
    wm = None
    for engine in engines:
        wm = GreenListWatermark(vocab_size, key, engine=engine)  # type: ignore[arg-type]
        seconds = timed(functools.partial(detect_all, wm, docs))
        seeds = wm.table.cached
        out[f"cold_{engine}"] = {
            "seconds": round(seconds, 3),
            "tokens_per_s": round(total / seconds),
            "green_lists_drawn": seeds,
            "us_per_green_list": round(seconds / seeds * 1e6, 1),
        }
    assert wm is not None
    rounds = [timed(lambda: detect_all(wm, docs)) for _ in range(3)]
    out["warm_per_document"] = {"best_s": round(min(rounds), 3), "tokens_per_s": round(total / min(rounds))}
    whole = np.concatenate(docs)
    rounds = [timed(lambda: wm.detect(whole)) for _ in range(3)]
    out["warm_one_call"] = {"best_s": round(min(rounds), 3), "tokens_per_s": round(total / min(rounds))}
    return out


def selfhash_case(vocab_size: int, tokens: int) -> dict[str, Any]:
    docs = zipf_corpus(vocab_size, tokens, seed=1)
    total = sum(len(d) for d in docs)
    wm = GreenListWatermark(vocab_size, derive_key(SECRET, "selfhash"), seeding_scheme="selfhash", context_width=4)
    wm.detect(docs[0][:10])  # the fixed table (randperm prefix), once per key
    cold = timed(lambda: detect_all(wm, docs))
    warm = timed(lambda: detect_all(wm, docs))
    return {
        "vocab_size": vocab_size,
        "context_width": 4,
        "tokens": total,
        "cold": {"seconds": round(cold, 3), "tokens_per_s": round(total / cold), "green_lists": wm.table.cached},
        "warm": {"seconds": round(warm, 3), "tokens_per_s": round(total / warm)},
    }


def synthid_case(vocab_size: int, tokens: int) -> dict[str, Any]:
    docs = zipf_corpus(vocab_size, tokens, seed=2)
    total = sum(len(d) for d in docs)
    wm = SynthIDWatermark.from_secret(SECRET, "bench", vocab_size, depth=30, ngram_len=5)
    wm.detect(docs[0])  # the sampling table
    rounds = [timed(lambda: detect_all(wm, docs)) for _ in range(3)]
    return {
        "vocab_size": vocab_size,
        "depth": 30,
        "ngram_len": 5,
        "tokens": total,
        "tokens_per_s": round(total / min(rounds)),
        "g_values_per_s": round(total * 30 / min(rounds)),
    }


def transformers_case(vocab_size: int, tokens: int) -> dict[str, Any] | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    torch.set_num_threads(1)
    docs = zipf_corpus(vocab_size, tokens, seed=3)
    wm = GreenListWatermark(vocab_size, derive_key(SECRET, "hf"), engine="numpy")
    config = transformers.GPT2Config(vocab_size=vocab_size, bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
    detector = transformers.WatermarkDetector(
        config, "cpu", transformers.WatermarkingConfig(**wm.transformers_kwargs()), ignore_repeated_ngrams=True
    )
    batch = torch.tensor(np.stack(docs))
    seconds = timed(lambda: detector(batch, return_dict=True))
    ours = timed(lambda: detect_all(wm, docs))
    theirs = detector(batch, return_dict=True)
    same = all(wm.score(doc) == (theirs.num_tokens_scored[i], theirs.num_green_tokens[i]) for i, doc in enumerate(docs))
    return {
        "tokens": int(batch.numel()),
        "transformers_tokens_per_s": round(batch.numel() / seconds),
        "ours_cold_numpy_tokens_per_s": round(batch.numel() / ours),
        "same_counts": same,
    }


def calibration(documents: int) -> dict[str, Any]:
    """Share of null documents (uniform random ids, independent of the key) at p <= alpha."""
    rng = np.random.default_rng(4)
    vocab_size = 32_000
    docs = [rng.integers(0, vocab_size, 200) for _ in range(documents)]
    out: dict[str, Any] = {"documents": documents, "tokens_per_document": 200}
    for wm in (
        GreenListWatermark(vocab_size, derive_key(SECRET, "null")),
        SynthIDWatermark.from_secret(SECRET, "null", vocab_size, depth=30, ngram_len=5),
    ):
        p = np.array([wm.detect(doc).p_value for doc in docs])
        out[wm.scheme] = {f"share_p_le_{a:g}": float(np.mean(p <= a)) for a in (0.1, 0.01, 0.001, 1e-4)}
        out[wm.scheme]["min_p"] = float(p.min())
    return out


def power(documents: int) -> dict[str, Any]:
    """Detection rate at p <= 1e-6 when each token is green with probability 0.5 (gamma 0.25)."""
    rng = np.random.default_rng(5)
    vocab_size = 32_000
    wm = GreenListWatermark(vocab_size, derive_key(SECRET, "power"))
    everything = np.arange(vocab_size)
    out: dict[str, Any] = {"green_share": 0.5, "gamma": 0.25}
    for length in (25, 50, 100, 200):
        detected = 0
        for _ in range(documents):
            ids = [int(rng.integers(vocab_size))]
            for _ in range(length):
                green = wm.greenlist_ids(ids[-1:])
                pool = green if rng.random() < 0.5 else np.setdiff1d(everything, green, assume_unique=True)
                ids.append(int(rng.choice(pool)))
            detected += wm.detect(ids).detected
        out[f"detected_at_{length}_tokens"] = detected / documents
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    versions = {"numpy": np.__version__}
    for name in ("scipy", "torch", "transformers"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = module.__version__
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small corpora (a check of the script, not figures)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    scale = 0.05 if args.quick else 1.0
    million = int(1_000_000 * scale)
    try:
        import torch

        torch.set_num_threads(1)
        engines = ["numpy", "torch"]
    except ImportError:
        engines = ["numpy"]

    load = list(os.getloadavg())
    results: dict[str, Any] = {"load_average_at_start": load, "document_tokens": DOC_TOKENS}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("greenlist_lefthash_32000", lambda: greenlist_case(32_000, million, engines)),
        ("greenlist_lefthash_50257", lambda: greenlist_case(50_257, million, ["numpy"])),
        ("greenlist_selfhash_32000", lambda: selfhash_case(32_000, int(20_000 * scale) or 1_000)),
        ("synthid_32000", lambda: synthid_case(32_000, million)),
        ("transformers_detector_32000", lambda: transformers_case(32_000, max(1_000, int(10_000 * scale)))),
        ("calibration_null", lambda: calibration(max(500, int(20_000 * scale)))),
        ("power_synthetic", lambda: power(max(20, int(200 * scale)))),
    ]
    for name, run in steps:
        start = time.perf_counter()
        results[name] = run()
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    results["machine"] = machine()

    rows = []
    for vocab in ("32000", "50257"):
        case = results[f"greenlist_lefthash_{vocab}"]
        for engine in engines if vocab == "32000" else ["numpy"]:
            cold = case[f"cold_{engine}"]
            rows.append(
                (
                    f"green list lefthash V={vocab}, cold ({engine})",
                    cold["tokens_per_s"],
                    f"{cold['green_lists_drawn']} lists, {cold['us_per_green_list']} us each",
                )
            )
        rows.append(
            (f"green list lefthash V={vocab}, warm, 500-token docs", case["warm_per_document"]["tokens_per_s"], "")
        )
        rows.append((f"green list lefthash V={vocab}, warm, one call", case["warm_one_call"]["tokens_per_s"], ""))
    selfhash = results["greenlist_selfhash_32000"]
    rows.append(("green list selfhash w=4 V=32000, cold", selfhash["cold"]["tokens_per_s"], "one list per token"))
    rows.append(("green list selfhash w=4 V=32000, warm", selfhash["warm"]["tokens_per_s"], ""))
    synthid = results["synthid_32000"]
    rows.append(("SynthID depth 30 V=32000", synthid["tokens_per_s"], f"{synthid['g_values_per_s']} g-values/s"))
    hf = results["transformers_detector_32000"]
    if hf:
        rows.append(
            (
                "transformers WatermarkDetector V=32000",
                hf["transformers_tokens_per_s"],
                f"same counts: {hf['same_counts']}",
            )
        )
    print(f"\n{'case':<52} {'tokens/s':>12}  notes")
    for name, rate, note in rows:
        print(f"{name:<52} {rate:>12,}  {note}")
    print("\ncalibration (null documents at p <= alpha):")
    for scheme in ("greenlist", "synthid"):
        print(f"  {scheme}: {results['calibration_null'][scheme]}")
    print(f"power (p <= 1e-6, half the tokens green): {results['power_synthetic']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
