"""Build the benchmark index shipped as package data: hashed segments of public benchmarks' TEST items.

    python scripts/build_benchmark_index.py --corpus ../shared/data

Reads gsm8k_test.jsonl ("question"), humaneval.jsonl ("prompt"), mbppplus.json (a dict keyed by task id whose
values are the prompt text, or objects with a prompt/text field) and wizardlm_testset.jsonl ("Instruction"), and
writes src/distillguard/detect/signals/data/benchmarks.bin (format in distillguard.detect.signals.benchmarks).

Two kinds of segment are left out, so that a hit means "this prompt contains a test item":
- anything that also occurs in the GSM8K TRAIN split (harvesters use train sets; a test question duplicated in
  train says nothing about evaluation);
- boilerplate shared by three or more items of one benchmark ("Your code should satisfy the following assertion").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from distillguard.detect.signals.benchmarks import decode_index, encode_index, segment_keys

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "src" / "distillguard" / "detect" / "signals" / "data" / "benchmarks.bin"
BOILERPLATE_ITEMS = 3
MAX_BYTES = 200_000


def _jsonl(path: Path, field: str) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                value = json.loads(line).get(field)
                if isinstance(value, str):
                    yield value


def _mbpp(path: Path) -> Iterator[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = data.values() if isinstance(data, dict) else data
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for key in ("prompt", "text"):
                if isinstance(entry.get(key), str):
                    yield entry[key]
                    break


def sources(corpus: Path) -> dict[str, list[str]]:
    """The test items of each benchmark, by name (the names extract() reports)."""
    return {
        "gsm8k": list(_jsonl(corpus / "gsm8k_test.jsonl", "question")),
        "humaneval": list(_jsonl(corpus / "humaneval.jsonl", "prompt")),
        "mbpp": list(_mbpp(corpus / "mbppplus.json")),
        "wizardlm": list(_jsonl(corpus / "wizardlm_testset.jsonl", "Instruction")),
    }


Key = tuple[int, int]


def item_keys(items: Iterable[str]) -> tuple[set[Key], int]:
    """Segment keys of a benchmark's items without boilerplate, and how many items got no key at all."""
    per_item = [segment_keys(item) for item in items]
    counts = Counter(h for hashes in per_item for h in hashes)
    boilerplate = {h for h, c in counts.items() if c >= BOILERPLATE_ITEMS}
    kept = {h for hashes in per_item for h in hashes} - boilerplate
    unindexed = sum(1 for hashes in per_item if not hashes - boilerplate)
    return kept, unindexed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="directory with the benchmark files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    if not corpus.is_dir():
        print(f"no corpus at {corpus}", file=sys.stderr)
        return 2
    train: set[Key] = set()
    for question in _jsonl(corpus / "gsm8k_train.jsonl", "question"):
        train |= segment_keys(question)
    entries: dict[str, set[Key]] = {}
    for name, items in sources(corpus).items():
        kept, unindexed = item_keys(items)
        overlap = kept & train
        entries[name] = kept - train
        print(
            f"{name}: {len(items)} items, {len(entries[name])} segments, "
            f"{len(overlap)} dropped as also in gsm8k train, {unindexed} items with no segment >= 40 bytes"
        )
    data = encode_index(entries)
    decode_index(data)  # round-trip check before writing
    if len(data) > MAX_BYTES:
        print(f"index is {len(data)} bytes, over the {MAX_BYTES} budget", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes, {sum(map(len, entries.values()))} segments)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
