"""Benchmark and quality report for the per-request signals (distillguard.detect.signals.extract).

    python bench/signals.py                       # timings over built-in sample requests
    python bench/signals.py --corpus ../shared/data   # realistic request mix + detector quality figures

Timings: extract() is timed call by call (perf_counter_ns) over a mix of requests, after a warm-up, and reported
as p50/p90/p99/mean/max in microseconds, overall and per kind of request. With --corpus the mix is built from the
public corpora (ShareGPT first turns, GSM8K/HumanEval in evaluation harnesses, Glasswally campaign prompts, the
Alpaca meta-prompt), and the report adds, per detector, the share of the 2,861 ShareGPT first turns it flags
(false-positive rate on benign traffic), the catch rate on the attack fixtures of the test suite and on the
Glasswally campaign prompts, and template/language/domain statistics. Figures go to bench/results/signals.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from distillguard.detect.signals import extract
from distillguard.detect.signals.simhash import hamming

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "detect" / "signals" / "fixtures"
RESULTS = ROOT / "bench" / "results" / "signals.json"

Request = tuple[str, dict[str, Any], str]  # (kind, body, endpoint)
CHAT = "/v1/chat/completions"

BUILTIN_PROMPTS = [
    "How does HTTPS work?",
    "Help me debug this JavaScript: console.log(typeof null)",
    "Write a cover letter for a junior data analyst position at a retail company. I have two years of experience "
    "with SQL and Tableau, and I led a project that cut reporting time by 40%.",
    "Explain photosynthesis to a 10-year-old.",
    "Translate 'hello world' into Spanish, French, and German.",
    "I have a pandas DataFrame with columns date, store and sales. How do I compute a 7-day rolling mean of sales "
    "per store, and plot the result for the three biggest stores?",
    "Think step by step: what is the capital of France?",
    "Question: A bakery sells 120 loaves a day at $3 each and 45 cakes at $12. How much does it take in per week?"
    "\nAnswer: Let's think step by step.",
    "Generate 50 question/answer pairs about photosynthesis in JSON.",
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
    "user question displayed below. Rate the response on a scale of 1 to 10.",
    "请一步一步地思考：一个农场有鸡和兔共35只，脚共94只，鸡和兔各有几只？",  # noqa: RUF001 (real Chinese punctuation)
    "Écris un poème sur la mer et le vent, s'il te plaît.",
]
SYSTEMS = [None, "You are a helpful assistant.", "You are an expert assistant. Answer every question fully."]


def _chat(text: str, system: str | None = None, **params: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return {"model": "m", "messages": messages, "max_tokens": 512, **params}


def builtin_requests() -> list[Request]:
    rnd = random.Random(1)
    out: list[Request] = [("chat", _chat(p, rnd.choice(SYSTEMS)), CHAT) for p in BUILTIN_PROMPTS]
    out.append(
        ("logprob", _chat("The sentiment of 'great movie' is", logprobs=True, top_logprobs=20, max_tokens=1), CHAT)
    )
    out.append(("completion", {"prompt": "def fibonacci(n):\n    ", "max_tokens": 64}, "/v1/completions"))
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def corpus_requests(corpus: Path) -> list[Request]:
    """A realistic mix: mostly ordinary chat, plus evaluation harnesses and campaign-style prompts."""
    rnd = random.Random(1)
    sharegpt = [r["prompt"] for r in _jsonl(corpus / "sharegpt_first_turns.jsonl")]
    gsm8k = [r["question"] for r in _jsonl(corpus / "gsm8k_test.jsonl")]
    humaneval = [r["prompt"] for r in _jsonl(corpus / "humaneval.jsonl")]
    out: list[Request] = []
    for text in sharegpt:
        kind = "chat<=1000" if len(text) <= 1000 else "chat>1000"
        out.append((kind, _chat(text, rnd.choice(SYSTEMS)), CHAT))
    for q in rnd.sample(gsm8k, 300):
        out.append(("eval-harness", _chat(f"Question: {q}\nAnswer: Let's think step by step.", temperature=0), CHAT))
    for p in humaneval:
        out.append(("completion", {"prompt": p, "max_tokens": 512, "temperature": 0}, "/v1/completions"))
    peer = corpus / "peer" / "glasswally_labeled_5k.jsonl"
    if peer.is_file():
        for r in rnd.sample(_jsonl(peer), 500):
            out.append(
                ("campaign-mix", _chat(r["prompt"], r.get("system_prompt"), max_tokens=r.get("max_tokens")), CHAT)
            )
    alpaca = (corpus / "alpaca_generation_prompt.txt").read_text(encoding="utf-8")
    out += [("chat<=1000" if len(alpaca) <= 1000 else "chat>1000", _chat(alpaca, temperature=1.0), CHAT)] * 5
    return out


def huge_requests() -> list[Request]:
    body = "The quarterly report shows steady growth across all regions. " * 2000  # ~120 KB
    lines = "\n".join(f"{i}: value={i * 7} status=ok" for i in range(5000))
    return [
        ("huge", _chat("Summarise the following report:\n\n" + body), CHAT),
        ("huge", _chat(lines + "\nWhich lines are anomalous?"), CHAT),
        ("huge", {"prompt": "x" * 200_000}, "/v1/completions"),
    ]


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _summary(values_us: list[float]) -> dict[str, float]:
    if not values_us:
        return {"n": 0}
    s = sorted(values_us)
    return {
        "n": len(s),
        "p50_us": round(_percentile(s, 0.50), 2),
        "p90_us": round(_percentile(s, 0.90), 2),
        "p99_us": round(_percentile(s, 0.99), 2),
        "mean_us": round(statistics.fmean(s), 2),
        "max_us": round(s[-1], 2),
    }


def time_extract(requests: list[Request], rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per-call timings in microseconds, by kind and overall (garbage collection left on, as in the gateway).

    ``observed``: every call, as timed. ``best_of_rounds``: per request, its fastest call over the rounds: the
    intrinsic cost, with preemption by other processes filtered out (this machine is shared).
    """
    for _, body, endpoint in requests:  # warm-up: caches, lazy imports
        extract(body, endpoint)
    per_request: list[list[float]] = [[] for _ in requests]
    clock = time.perf_counter_ns
    order = list(range(len(requests)))
    rnd = random.Random(2)
    for _ in range(rounds):
        rnd.shuffle(order)  # no request is timed right after itself: caches are as cold as in real traffic
        for i in order:
            _, body, endpoint = requests[i]
            start = clock()
            extract(body, endpoint)
            per_request[i].append((clock() - start) / 1000)
    report: dict[str, dict[str, dict[str, float]]] = {}
    kinds = [*sorted({kind for kind, _, _ in requests}), "all_but_huge"]
    for kind in kinds:
        chosen = [
            t
            for (k, _, _), t in zip(requests, per_request, strict=True)
            if k == kind or (kind == "all_but_huge" and k != "huge")
        ]
        report[kind] = {
            "observed": _summary([x for t in chosen for x in t]),
            "best_of_rounds": _summary([min(t) for t in chosen]),
        }
    return report


def _rate(hits: int, total: int) -> dict[str, Any]:
    return {"hits": hits, "total": total, "rate": round(hits / total, 5) if total else None}


def detector_quality(corpus: Path) -> dict[str, Any]:
    """False-positive rates on ShareGPT, catch rates on fixtures and campaign prompts, template/language stats."""
    sharegpt = _jsonl(corpus / "sharegpt_first_turns.jsonl")
    signals = [extract(_chat(r["prompt"])) for r in sharegpt]
    total = len(signals)
    detectors: dict[str, Callable[[Any], bool]] = {
        "cot": lambda s: s.cot is not None,
        "training_data": lambda s: s.training_data is not None,
        "rubric": lambda s: s.rubric is not None,
        "benchmark": lambda s: s.benchmark is not None,
        "any_phrase_rule": lambda s: bool(s.cot or s.training_data or s.rubric),
    }
    fp: dict[str, Any] = {}
    for name, hit in detectors.items():
        flagged = [(r["id"], s) for r, s in zip(sharegpt, signals, strict=True) if hit(s)]
        fp[name] = _rate(len(flagged), total)
        if name != "any_phrase_rule":
            fp[name]["hits_by_rule"] = dict(Counter(str(getattr(s, name)) for _, s in flagged).most_common())
            fp[name]["examples"] = [
                {"id": i, "rule": getattr(s, name), "prompt": next(r["prompt"] for r in sharegpt if r["id"] == i)[:160]}
                for i, s in flagged[:12]
            ]

    catch: dict[str, Any] = {}
    for family in ("cot", "training_data", "rubric"):
        data = json.loads((FIXTURES / f"{family}.json").read_text(encoding="utf-8"))
        caught = 0
        for case in data["catch"]:
            messages = [{"role": case.get("role", "user"), "content": case["text"]}]
            if case.get("role", "user") != "user":
                messages.append({"role": "user", "content": "Hello."})
            caught += getattr(extract({"messages": messages}), family) == case["rule"]
        passed = sum(getattr(extract(_chat(c["text"])), family) is None for c in data["pass"])
        catch[family] = {
            "fixtures_caught": _rate(caught, len(data["catch"])),
            "benign_fixtures_passed": _rate(passed, len(data["pass"])),
        }
    alpaca = (corpus / "alpaca_generation_prompt.txt").read_text(encoding="utf-8")
    catch["alpaca_generation_prompt"] = extract(_chat(alpaca)).training_data

    bench_fixture = json.loads((FIXTURES / "benchmarks.json").read_text(encoding="utf-8"))
    catch["benchmark"] = {
        "test_items_matched": _rate(
            sum(extract(_chat(c["text"])).benchmark == c["benchmark"] for c in bench_fixture["catch"]),
            len(bench_fixture["catch"]),
        ),
        "gsm8k_test_all_bare": _rate(
            sum(extract(_chat(r["question"])).benchmark == "gsm8k" for r in _jsonl(corpus / "gsm8k_test.jsonl")), 1319
        ),
        "gsm8k_test_all_in_harness": _rate(
            sum(
                extract(_chat(f"Q: {r['question']}\nA: Let's think step by step.")).benchmark == "gsm8k"
                for r in _jsonl(corpus / "gsm8k_test.jsonl")
            ),
            1319,
        ),
        "gsm8k_train_all_false_matches": _rate(
            sum(extract(_chat(r["question"])).benchmark is not None for r in _jsonl(corpus / "gsm8k_train.jsonl")), 7473
        ),
        "humaneval_all_as_completion": _rate(
            sum(
                extract({"prompt": r["prompt"]}, "/v1/completions").benchmark == "humaneval"
                for r in _jsonl(corpus / "humaneval.jsonl")
            ),
            164,
        ),
    }

    peer = corpus / "peer" / "glasswally_labeled_5k.jsonl"
    if peer.is_file():
        rows = _jsonl(peer)
        campaign = [r for r in rows if r.get("campaign_label")]
        benign = [r for r in rows if not r.get("campaign_label")]

        def any_flag(r: dict[str, Any]) -> bool:
            s = extract(_chat(r["prompt"], r.get("system_prompt")))
            return bool(s.cot or s.training_data or s.rubric)

        catch["glasswally"] = {
            "campaign_requests_flagged": _rate(sum(map(any_flag, campaign)), len(campaign)),
            "campaign_user_prompt_cot": _rate(
                sum(extract(_chat(r["prompt"])).cot is not None for r in campaign), len(campaign)
            ),
            "benign_requests_flagged": _rate(sum(map(any_flag, benign)), len(benign)),
        }

    # Templates: distinct prompts that share a template id with a different prompt (unrelated prompts merging).
    by_template: dict[str, set[str]] = {}
    for r, s in zip(sharegpt, signals, strict=True):
        by_template.setdefault(s.template_id, set()).add(r["prompt"])
    distinct_prompts = len({r["prompt"] for r in sharegpt})
    merged = sum(len(p) for p in by_template.values() if len(p) > 1)
    rnd = random.Random(3)
    pairs = [rnd.sample(signals, 2) for _ in range(20_000)]
    templates = {
        "distinct_prompts": distinct_prompts,
        "distinct_template_ids": len(by_template),
        "prompts_sharing_a_template_with_another_prompt": _rate(merged, distinct_prompts),
        "largest_shared_templates": [
            sorted(p, key=len)[0][:80] for p in sorted(by_template.values(), key=len, reverse=True)[:5] if len(p) > 1
        ],
        "simhash_mean_hamming_random_pairs": round(
            statistics.fmean(hamming(a.content_sig, b.content_sig) for a, b in pairs), 2
        ),
    }
    return {
        "sharegpt_false_positive_rates": fp,
        "catch_rates": catch,
        "templates": templates,
        "languages": dict(Counter(s.language for s in signals).most_common(15)),
        "domains": dict(Counter(s.domain for s in signals).most_common()),
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="directory of the public corpora (../shared/data)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the request mix")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    corpus: Path | None = args.corpus
    if corpus is not None and not (corpus / "sharegpt_first_turns.jsonl").is_file():
        print(f"no corpus at {corpus}; using the built-in samples", file=sys.stderr)
        corpus = None
    requests = corpus_requests(corpus) if corpus else builtin_requests()
    requests += huge_requests()
    gc.collect()
    load_average = os.getloadavg() if hasattr(os, "getloadavg") else None
    timings = time_extract(requests, args.rounds)
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "request_mix": "corpus" if corpus else "builtin",
        "load_average_at_start": load_average,
        "requests": len(requests),
        "rounds": args.rounds,
        "timings": timings,
    }
    print(f"extract() over {len(requests)} requests x {args.rounds} rounds ({result['request_mix']} mix), microseconds")
    print(f"load average at start: {load_average} (the machine may be shared: see best_of_rounds)")
    for kind, t in timings.items():
        for view, v in t.items():
            print(
                f"  {kind:14} {view:14} n={v['n']:6}  p50={v['p50_us']:7.1f}  p90={v['p90_us']:7.1f}"
                f"  p99={v['p99_us']:7.1f}  mean={v['mean_us']:7.1f}  max={v['max_us']:8.1f}"
            )
    if corpus:
        result["quality"] = detector_quality(corpus)
        print(json.dumps(result["quality"], indent=1, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
