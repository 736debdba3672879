"""End to end provenance demo: a student trained on the gateway's watermarked answers inherits the mark.

    .venv/bin/python bench/provenance_demo.py                 # from the repository root; about 45 s on 2 cores
    .venv/bin/python bench/provenance_demo.py --harvest 1500 --queries 2000 --seed 0

Everything runs on loopback, in this process (no network, no external corpus):

1. **Teacher**: an OpenAI-compatible chat server that answers each prompt with about 320 words of English prose,
   paragraphs of Python's own reference documentation (``pydoc_data.topics`` in the standard library, code blocks
   dropped; the same text bench/watermark_text.py uses), drawn deterministically from a hash of the prompt. It is
   retrieval, not a language model.
2. **Gateway**: distillguard in front of the teacher, with the text watermark on (``strength = "standard"``, the
   deployment key). Detection and responses are off, so the harvester is never throttled.
3. **Harvest**: ``--harvest`` prompts (topic x template, not the provenance test's probe prompts) sent through the
   gateway (the watermarked corpus) and straight to the teacher (the clean corpus).
4. **Students**: two word-level trigram language models (backoff to bigram and unigram, sampling at
   ``--temperature``), one trained on each corpus. Each answers a prompt with 150 to 300 sampled words, seeded by
   the prompt.
5. **Provenance test**: both students served as OpenAI-compatible endpoints, and
   ``distillguard.watermark.provenance.examine`` run against each with the deployment key: over every context, over
   the contexts we served only, and at increasing numbers of probe queries (the queries-needed curve).

Figures go to bench/results/provenance_demo.json; docs/watermark.md ("End to end: a student learns the mark")
quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import functools
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.table import Table

from distillguard.config import (
    DetectConfig,
    LimitsConfig,
    LimitSet,
    RespondConfig,
    Settings,
    TierLimits,
    UpstreamConfig,
    WatermarkConfig,
)
from distillguard.gateway.app import Gateway
from distillguard.gateway.server import serving_in_process
from distillguard.logs import configure_logging
from distillguard.watermark.provenance import ProvenanceReport, examine, served_contexts
from distillguard.watermark.result import DEFAULT_ALPHA
from distillguard.watermark.text import TextKey, derive_key, detect, sites
from watermark_text import pydoc_prose  # bench/ is on sys.path when this file is run as a script

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "bench" / ".run" / "provenance"
RESULTS = ROOT / "bench" / "results" / "provenance_demo.json"
TEACHER_WORDS = 320  # words per teacher answer (whole paragraphs, so a little more)
STUDENT_WORDS = (150, 300)  # words per student answer, drawn uniformly
CURVE = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2000)
CONTROL_ALPHA = 0.01  # the control must not reach even this

console = Console(width=None if sys.stdout.isatty() else 160)
T = TypeVar("T")


# the teacher ------------------------------------------------------------------------------------------
class Teacher:
    """Answers a prompt with whole pydoc paragraphs, drawn at random with a seed derived from the prompt."""

    def __init__(self, paragraphs: Sequence[str]) -> None:
        self.paragraphs = list(paragraphs)

    def answer(self, prompt: str) -> str:
        rng = random.Random(hashlib.sha256(prompt.encode()).digest())
        chosen: list[str] = []
        words = 0
        while words < TEACHER_WORDS:
            paragraph = rng.choice(self.paragraphs)
            chosen.append(paragraph)
            words += len(paragraph.split())
        return "\n\n".join(chosen)


def completion(model: str, prompt: str, content: str) -> dict[str, Any]:
    prompt_tokens = max(1, round(len(prompt.split()) * 1.3))
    completion_tokens = max(1, round(len(content.split()) * 1.3))
    return {
        "id": "chatcmpl-" + hashlib.sha256(f"{model}:{prompt}".encode()).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_handler(model: str, answer: Callable[[str], str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An OpenAI-compatible POST /chat/completions: the last user message in, one answer out."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        messages = body.get("messages") or []
        prompt = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
        if not isinstance(prompt, str):
            prompt = json.dumps(prompt)
        return web.json_response(completion(body.get("model") or model, prompt, answer(prompt)))

    return handle


# the students -----------------------------------------------------------------------------------------
BOS, EOS, PARAGRAPH = "<s>", "</s>", "\n"
_OPENING = frozenset("([\u201c\u2018")
_CLOSING = frozenset(".,;:!?)]\u201d")
_LEADING = re.compile('^[(\\[\u201c\u2018"]+')
_TRAILING = re.compile('[)\\]\u201d".,;:!?]+$')


def tokenize(text: str) -> list[str]:
    """Whitespace pieces, with leading and trailing punctuation split off one character at a time. A word keeps its
    inner apostrophe ("it's", and its curly form, are tokens of their own) and identifiers stay whole ("__init__")."""
    tokens: list[str] = []
    for p, paragraph in enumerate(text.split("\n\n")):
        if p:
            tokens.append(PARAGRAPH)
        for piece in paragraph.split():
            lead = _LEADING.match(piece)
            head = lead.group(0) if lead else ""
            rest = piece[len(head) :]
            trail = _TRAILING.search(rest)
            tail = trail.group(0) if trail and trail.start() > 0 else ""
            core = rest[: len(rest) - len(tail)]
            tokens.extend(head)
            if core:
                tokens.append(core)
            tokens.extend(tail)
    return tokens


def detokenize(tokens: Sequence[str]) -> str:
    """Spaces between tokens, none before closing punctuation or after opening; straight double quotes alternate
    between opening and closing within a paragraph."""
    out: list[str] = []
    glue = True  # no space before the next token
    quote_open = False
    for tok in tokens:
        if tok == PARAGRAPH:
            out.append("\n\n")
            glue, quote_open = True, False
            continue
        if tok == '"':
            quote_open = not quote_open
            closing = not quote_open
        else:
            closing = tok in _CLOSING
        if not glue and not closing:
            out.append(" ")
        out.append(tok)
        glue = tok in _OPENING or (tok == '"' and quote_open)
    return "".join(out).strip()


def is_word(token: str) -> bool:
    return token[:1].isalnum()


class TrigramStudent:
    """A word-level trigram language model with backoff (trigram, else bigram, else unigram), sampled at a
    temperature. It learns what follows each pair of tokens, which is where the watermark's keyed choice lives."""

    def __init__(self, texts: Sequence[str], temperature: float) -> None:
        self.temperature = temperature
        self.tri: dict[tuple[str, str], Counter[str]] = {}
        self.bi: dict[str, Counter[str]] = {}
        self.uni: Counter[str] = Counter()
        self.tokens = 0
        for text in texts:
            seq = [BOS, BOS, *tokenize(text), EOS]
            self.tokens += len(seq) - 3
            for a, b, c in zip(seq, seq[1:], seq[2:], strict=False):
                self.tri.setdefault((a, b), Counter())[c] += 1
                self.bi.setdefault(b, Counter())[c] += 1
                self.uni[c] += 1
        self._tables: dict[Any, tuple[list[str], list[float]]] = {}

    def _table(self, key: Any, counts: Counter[str]) -> tuple[list[str], list[float]]:
        table = self._tables.get(key)
        if table is None:
            tokens = list(counts)
            cumulative: list[float] = []
            total = 0.0
            for tok in tokens:
                total += counts[tok] ** (1.0 / self.temperature)
                cumulative.append(total)
            table = self._tables[key] = (tokens, cumulative)
        return table

    def next_token(self, a: str, b: str, rng: random.Random) -> str:
        if (a, b) in self.tri:
            tokens, cumulative = self._table((a, b), self.tri[(a, b)])
        elif b in self.bi:
            tokens, cumulative = self._table(b, self.bi[b])
        else:
            tokens, cumulative = self._table(None, self.uni)
        return rng.choices(tokens, cum_weights=cumulative)[0]

    def generate(self, prompt: str, seed: int) -> str:
        """150 to 300 words, seeded by the prompt; a sampled end of text starts a new paragraph from scratch."""
        rng = random.Random(hashlib.sha256(f"{seed}:{prompt}".encode()).digest())
        target = rng.randint(*STUDENT_WORDS)
        out: list[str] = []
        a, b = BOS, BOS
        words = 0
        while words < target + 60:
            tok = self.next_token(a, b, rng)
            if tok == EOS:
                if words >= target:
                    break
                out.append(PARAGRAPH)
                a, b = BOS, BOS
                continue
            out.append(tok)
            a, b = b, tok
            if is_word(tok):
                words += 1
            elif words >= target and tok in ".!?":
                break
        return detokenize(out)


# servers ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Background:
    """An event loop in a thread, holding every server; the main thread drives clients and examine()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="servers", daemon=True)
        self.thread.start()
        self.stops: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def serve_aiohttp(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.stops.append(runner.cleanup)
        return f"http://127.0.0.1:{port}"

    async def serve_gateway(self, gateway: Gateway) -> str:
        serving = serving_in_process(gateway, free_port())
        url = await serving.__aenter__()

        async def stop() -> None:
            await serving.__aexit__(None, None, None)

        self.stops.append(stop)
        return url

    def close(self) -> None:
        for stop in reversed(self.stops):
            try:
                self.run(stop(), timeout=30)
            except Exception as exc:  # stopping the others matters more
                console.print(f"[yellow]stopping a server failed: {exc!r}[/yellow]")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# harvesting -------------------------------------------------------------------------------------------
_HARVEST_TOPICS = (
    "the with statement", "exception handling", "generators", "decorators", "the import system", "closures",
    "string formatting", "dictionaries", "class inheritance", "operator overloading", "coroutines", "slicing",
    "name binding", "the data model", "comprehensions", "integer division", "context managers", "descriptors",
    "the global statement", "lambda expressions", "metaclasses", "iterators", "assignment expressions", "modules",
)  # fmt: skip
_HARVEST_TEMPLATES = (
    "Explain {t} in Python in detail, with the exact rules the language reference gives.",
    "I am writing a textbook chapter on {t}. Draft the reference section for it.",
    "How does Python handle {t}? Describe the semantics precisely and mention the edge cases.",
    "Write documentation-style prose about {t} for experienced programmers.",
    "Summarise what the Python language reference says about {t}, then go into the details.",
)


def harvest_prompts(count: int, seed: int) -> list[str]:
    """The harvester's prompts: topic x template x a case number, shuffled (none is a probe prompt)."""
    rng = random.Random(f"harvest:{seed}")
    prompts = [
        f"{rng.choice(_HARVEST_TEMPLATES).format(t=rng.choice(_HARVEST_TOPICS))} (case {i}-{rng.randrange(10**6)})"
        for i in range(count)
    ]
    rng.shuffle(prompts)
    return prompts


async def harvest(
    base_url: str, model: str, prompts: Sequence[str], api_key: str | None, concurrency: int
) -> list[str]:
    """Answers in prompt order; any failure aborts (the corpus must be complete)."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(prompt: str) -> str:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1024}
            async with gate, session.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}: {(await resp.text())[:200]}")
                payload = await resp.json(content_type=None)
            return str(payload["choices"][0]["message"]["content"])

        return list(await asyncio.gather(*(one(p) for p in prompts)))


# reporting --------------------------------------------------------------------------------------------
def fmt_p(p: float) -> str:
    if p <= 0:
        return "< 1e-300"  # the exact tail underflows double precision
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def report_row(report: ProvenanceReport) -> dict[str, Any]:
    d = report.detection
    return {
        "verdict": report.verdict,
        "p_value": d.p_value,
        "log10_p": round(math.log10(d.p_value), 2) if d.p_value > 0 else None,
        "scored": d.scored,
        "hits": d.hits,
        "expected": round(d.expected, 2),
        "queries_sent": report.queries_sent,
        "queries_answered": report.queries_answered,
        "errors": report.errors,
        "words": report.words,
        "restricted_to_served": report.restricted_to_served,
        "seconds": round(report.seconds, 1),
    }


def probe_student(
    url: str, key: TextKey, queries: int, served: set[tuple[int, str]], concurrency: int
) -> dict[str, Any]:
    """examine() over every context and over the served ones, at ``queries`` and at fewer (the curve)."""
    curve: list[dict[str, Any]] = []
    for q in [*(c for c in CURVE if c < queries), queries]:
        full = examine(url, "student", [key], queries=q, concurrency=concurrency)
        restricted = examine(url, "student", [key], queries=q, served=served, concurrency=concurrency)
        curve.append({"queries": q, "all_contexts": report_row(full), "served_contexts": report_row(restricted)})
    needed = {
        field: next((c["queries"] for c in curve if c[field]["p_value"] <= DEFAULT_ALPHA), None)
        for field in ("all_contexts", "served_contexts")
    }
    return {
        "all_contexts": curve[-1]["all_contexts"],
        "served_contexts": curve[-1]["served_contexts"],
        "queries_needed_for_1e-6": needed,
        "curve": curve,
        "evidence_sample": full.evidence[:12],
    }


def word_diff(before: str, after: str) -> tuple[int, list[tuple[str, str]]]:
    """Words of ``before`` changed in ``after`` (replaced or deleted, or inserted), and the changes."""
    a, b = before.split(), after.split()
    changed = 0
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op != "equal":
            changed += max(i2 - i1, j2 - j1)
            changes.append((" ".join(a[max(0, i1 - 3) : i2 + 1]), " ".join(b[max(0, j1 - 3) : j2 + 1])))
    return changed, changes


def corpus_stats(texts: Sequence[str]) -> dict[str, Any]:
    found = [s for t in texts for s in sites(t)]
    return {
        "answers": len(texts),
        "words": sum(len(t.split()) for t in texts),
        "sites": len(found),
        "distinct_contexts": len({(s.cls.cid, s.context) for s in found}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--harvest", type=int, default=1500, help="prompts harvested through the gateway")
    parser.add_argument("--queries", type=int, default=2000, help="probe queries sent to each student")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0, help="the students' sampling temperature")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    configure_logging("WARNING", "text")
    started = time.monotonic()
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)

    paragraphs = pydoc_prose()
    teacher = Teacher(paragraphs)
    bg = Background()
    timings: dict[str, float] = {}
    try:
        # 1-2. teacher and gateway
        teacher_app = web.Application()
        teacher_app.router.add_post("/v1/chat/completions", chat_handler("teacher", teacher.answer))
        teacher_url = bg.run(bg.serve_aiohttp(teacher_app)) + "/v1"
        settings = Settings(
            data_dir=RUN_DIR,
            secret=f"provenance-demo-{args.seed}",  # a fixed deployment secret (so key), for reproducible runs
            upstreams=[UpstreamConfig(name="teacher", base_url=teacher_url)],
            limits=LimitsConfig(
                default_tier="standard",
                tiers={
                    "standard": TierLimits(account=LimitSet(requests=["100000/minute"], tokens=["100000000/minute"]))
                },
            ),
            detect=DetectConfig(enabled=False),
            respond=RespondConfig(enabled=False),
            watermark=WatermarkConfig(enabled=True, strength="standard"),
        )
        gateway = Gateway(settings)
        gateway.store.upsert_account("harvester", tier="standard")
        api_key = gateway.store.create_key("harvester", "provenance-demo")[1]
        key = derive_key(gateway.store.secret, "deployment")
        gateway_url = bg.run(bg.serve_gateway(gateway)) + "/v1"
        console.print(f"teacher {teacher_url}  gateway {gateway_url}  ({len(paragraphs)} pydoc paragraphs)")

        # 3. harvest
        t0 = time.monotonic()
        prompts = harvest_prompts(args.harvest, args.seed)
        marked = asyncio.run(harvest(gateway_url, "teacher", prompts, api_key, args.concurrency))
        timings["harvest_gateway_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        clean = asyncio.run(harvest(teacher_url, "teacher", prompts, None, args.concurrency))
        timings["harvest_teacher_s"] = time.monotonic() - t0
        differ = sum(m != c for m, c in zip(marked, clean, strict=True))
        same_teacher = sum(c == teacher.answer(p) for c, p in zip(clean, prompts, strict=True))
        marked_detection = detect("\n\n".join(marked), [key])
        clean_detection = detect("\n\n".join(clean), [key])
        changed_words = 0
        changes: list[tuple[str, str]] = []
        for m, c in zip(marked, clean, strict=True):
            n, found = word_diff(c, m)
            changed_words += n
            changes.extend(found)
        gateway_check = {
            "answers_changed_by_gateway": differ,
            "teacher_answers_reproducible": same_teacher,
            "words_changed_per_100": round(100 * changed_words / max(1, sum(len(c.split()) for c in clean)), 3),
            "example_changes": [{"teacher": t, "gateway": g} for t, g in changes[:12]],
            "detect_watermarked_corpus": marked_detection.to_json(),
            "detect_clean_corpus": clean_detection.to_json(),
        }
        console.print(
            f"harvested {len(marked)} answers; the gateway changed {differ}; detect(watermarked corpus) "
            f"p={fmt_p(marked_detection.p_value)}, detect(clean corpus) p={fmt_p(clean_detection.p_value)}"
        )
        if not marked_detection.detected or differ == 0:
            raise RuntimeError("the gateway did not watermark the harvested answers")

        # 4. students
        t0 = time.monotonic()
        students = {
            "watermarked": TrigramStudent(marked, args.temperature),
            "control": TrigramStudent(clean, args.temperature),
        }
        timings["train_s"] = time.monotonic() - t0
        student_app = web.Application()
        for name, model in students.items():
            handler = chat_handler(f"student-{name}", functools.partial(model.generate, seed=args.seed))
            student_app.router.add_post(f"/{name}/v1/chat/completions", handler)
        student_base = bg.run(bg.serve_aiohttp(student_app))

        # 5. provenance tests
        served = served_contexts(marked)
        results: dict[str, Any] = {}
        for name, model in students.items():
            t0 = time.monotonic()
            url = f"{student_base}/{name}/v1"
            results[name] = {
                "trained_on": "gateway (watermarked) answers" if name == "watermarked" else "teacher (clean) answers",
                "training_tokens": model.tokens,
                "trigram_contexts": len(model.tri),
                "sample_answer": model.generate("Explain closures to a beginner.", args.seed)[:600],
                **probe_student(url, key, args.queries, served, 8),
            }
            timings[f"probe_{name}_s"] = time.monotonic() - t0
            row = results[name]["all_contexts"]
            console.print(
                f"{name}: {row['verdict']} p={fmt_p(row['p_value'])} ({row['hits']}/{row['scored']} hits, "
                f"{row['expected']} expected), {timings[f'probe_{name}_s']:.0f}s"
            )
        # The same watermarked student, tested with the key of another deployment: must not be detected.
        wrong_key = derive_key(hashlib.sha256(b"another deployment").digest(), "deployment")
        wrong = examine(f"{student_base}/watermarked/v1", "student", [wrong_key], queries=args.queries)
        results["watermarked"]["wrong_key"] = {"key_id": wrong_key.key_id, **report_row(wrong)}
    finally:
        bg.close()
    seconds = time.monotonic() - started

    wm, ctl = results["watermarked"], results["control"]
    needed = wm["queries_needed_for_1e-6"]["all_contexts"]
    targets = {
        "watermarked_p_le_1e-6_within_2000_queries": needed is not None and needed <= 2000,
        "control_p_ge_0.01": all(ctl[f]["p_value"] >= CONTROL_ALPHA for f in ("all_contexts", "served_contexts")),
        "wrong_key_p_ge_0.01": wm["wrong_key"]["p_value"] >= CONTROL_ALPHA,
    }
    out: dict[str, Any] = {
        "kind": "provenance_demo",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ".venv/bin/python bench/provenance_demo.py " + " ".join(sys.argv[1:]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "teacher": {
            "kind": "retrieval over pydoc_data.topics prose (not a language model)",
            "paragraphs": len(paragraphs),
            "words_per_answer": TEACHER_WORDS,
        },
        "gateway": {"watermark": settings.watermark.model_dump(), "key_id": key.key_id, "scope": key.scope},
        "student": {
            "kind": "word-level trigram LM, backoff to bigram and unigram",
            "temperature": args.temperature,
            "words_per_answer": list(STUDENT_WORDS),
        },
        "corpora": {"watermarked": corpus_stats(marked), "clean": corpus_stats(clean)},
        "served_contexts": len(served),
        "gateway_check": gateway_check,
        "students": results,
        "targets": targets,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")

    table = Table(title=f"Provenance test ({args.queries} probe queries per test, deployment key {key.key_id})")
    for column in ("student", "key", "contexts", "verdict", "p-value", "scored", "hits", "expected", "Q for 1e-6"):
        table.add_column(column, justify="left" if column in ("student", "key", "contexts", "verdict") else "right")
    rows = [
        (name, "deployment", label, res[field], res["queries_needed_for_1e-6"][field])
        for name, res in results.items()
        for label, field in (("all", "all_contexts"), ("served only", "served_contexts"))
    ]
    rows.append(("watermarked", "another deployment's", "all", wm["wrong_key"], None))
    for name, which, label, r, q in rows:
        table.add_row(
            name,
            which,
            label,
            r["verdict"],
            fmt_p(r["p_value"]),
            str(r["scored"]),
            str(r["hits"]),
            f"{r['expected']:.1f}",
            "-" if q is None else str(q),
        )
    console.print(table)
    curve = Table(title="p-value (hits/scored) against the number of probe queries")
    curve.add_column("queries", justify="right")
    for name in results:
        curve.add_column(f"{name}, all contexts", justify="right")
        curve.add_column(f"{name}, served only", justify="right")
    for i, point in enumerate(wm["curve"]):
        cells = [
            f"{fmt_p(c['p_value'])} ({c['hits']}/{c['scored']})"
            for r in (wm, ctl)
            for c in (r["curve"][i]["all_contexts"], r["curve"][i]["served_contexts"])
        ]
        curve.add_row(str(point["queries"]), *cells)
    console.print(curve)
    console.print(
        f"corpora: watermarked {out['corpora']['watermarked']['words']:,} words, clean "
        f"{out['corpora']['clean']['words']:,} words; targets {targets}; total {seconds:.0f}s -> {args.out}"
    )
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
