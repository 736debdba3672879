"""What the text watermark adds to the gateway's streaming path: CPU time per 1,000 tokens of response.

    .venv/bin/python bench/watermark_stream.py --corpus /work/shared/data      # from the repository root

Issue 7 asks that watermarking add at most 1 ms per 1,000 tokens of response. Here a response is streamed as an
OpenAI chat completion streams it: a first chunk with the role, then one chunk per token-sized delta (a leading space
and up to five letters, or one punctuation mark: ``watermark_text.token_deltas``), a ``finish_reason`` chunk, the
usage chunk (the gateway always asks for it) and ``[DONE]``, each event in a network read of its own (the pace of a
live model). Every read goes through the gateway's ``ChunkRelay`` (distillguard/gateway/sse.py), as
``Exchange._relay`` uses it: split into events (``SSESplitter``), the ``data:`` payload parsed with orjson, the
watermark applied to the parsed chunk (``ResponseWatermarker.chunk``), the chunk serialised again when it changed,
the event log's tap
(``CompletionTap``), the usage chunk kept from a client that did not ask for it. The same path with the watermark
off runs alternately with it in one process; what the watermark adds is the difference of their CPU times
(``time.process_time``, the minimum of ``--runs`` runs each). Tokens are counted as whitespace words x 1.3, as in
watermark_text.py. bench/watermark_text.py runs this too and keeps the figures with its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from distillguard.gateway.sse import ChunkRelay, CompletionTap, SSESplitter, event_data
from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.text import Strength, TextKey, derive_key, mark

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "watermark_stream.json"
TOKENS_PER_WORD = 1.3
BPE_VOCAB = 32_000
RUNS = 15
STREAM_KEY = derive_key(b"bench-watermark-stream")
# What an OpenAI chat completion chunk carries besides its delta (with stream_options.include_usage, "usage": null).
_CHUNK = {
    "id": "chatcmpl-AX3kQm4LzR1vT6pW3nE7aH0cJ9x8Yb2",
    "object": "chat.completion.chunk",
    "created": 1732540000,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_0ba0d124f1",
}


def openai_stream(deltas: Sequence[str]) -> list[bytes]:
    """The SSE events of a streamed chat completion whose content arrives in ``deltas``, one event each."""
    chunks: list[dict[str, Any]] = [
        {**_CHUNK, "choices": [_choice({"role": "assistant", "content": "", "refusal": None})], "usage": None}
    ]
    chunks += [{**_CHUNK, "choices": [_choice({"content": delta})], "usage": None} for delta in deltas]
    chunks.append({**_CHUNK, "choices": [_choice({}, "stop")], "usage": None})
    words = len("".join(deltas).split())
    usage = {"prompt_tokens": 24, "completion_tokens": round(words * TOKENS_PER_WORD), "total_tokens": 0}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    chunks.append({**_CHUNK, "choices": [], "usage": usage})
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


def _choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def relay(
    reads: Sequence[bytes], watermarker: ResponseWatermarker | None, keep: bool = True
) -> tuple[str, list[bytes]]:
    """Each network read through the gateway's own ``ChunkRelay``, as ``Exchange._relay`` uses it (no degrade
    policy; the client did not ask for usage); returns the text the event log keeps and the bytes the client got
    (with ``keep=False`` they are dropped as they go out, as the gateway drops them once written to the socket)."""
    tap = CompletionTap(chat=True)
    chunks = ChunkRelay(tap, None, hide_usage=True, marker=watermarker.stream() if watermarker is not None else None)
    sent: list[bytes] = []
    for data in reads:
        out = chunks.feed(data)
        if keep and out is not None:
            sent.append(out)
    out = chunks.close()
    if keep and out is not None:
        sent.append(out)
    return tap.text, sent


def client_text(sent: Sequence[bytes]) -> str:
    """The answer as a client reads it from the events it got."""
    splitter = SSESplitter()
    parts = []
    for data in sent:
        for sse in splitter.feed(data):
            payload = event_data(sse)
            if payload is not None and payload != b"[DONE]":
                for choice in orjson.loads(payload)["choices"]:
                    parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def added_cpu(
    texts: Mapping[str, Sequence[str]], key: TextKey, runs: int = RUNS, tokens_of: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """For each text (given as its deltas) and strength: CPU ms per 1,000 tokens of the relay with the watermark
    off and on (minimum and median of ``runs`` alternating runs, after one run that checks the text) and what the
    watermark adds. Tokens: ``tokens_of[name]`` (counted by the tokenizer that cut the deltas), else words x 1.3."""
    rows = []
    strengths: tuple[Strength, ...] = ("standard", "strong")
    for name, deltas in texts.items():
        reads = openai_stream(deltas)
        tokens = (tokens_of or {}).get(name) or len("".join(deltas).split()) * TOKENS_PER_WORD
        per_1k = 1e6 / tokens  # seconds -> ms per 1,000 tokens
        for strength in strengths:  # what the client gets (and the event log keeps) is the text marked whole
            logged, sent = relay(reads, ResponseWatermarker(key, strength, chat=True))
            if not logged == client_text(sent) == mark("".join(deltas), key, strength):
                raise SystemExit(f"{name}: the streamed text differs from the text marked whole ({strength})")
        times: dict[Strength | None, list[float]] = {None: [], **{s: [] for s in strengths}}
        for _ in range(runs):
            for level, spent in times.items():
                watermarker = None if level is None else ResponseWatermarker(key, level, chat=True)
                started = time.process_time()
                relay(reads, watermarker, keep=False)
                spent.append(time.process_time() - started)
        off = min(times[None])
        row: dict[str, Any] = {
            "text": name,
            "tokens": round(tokens),
            "events": len(reads),
            "off_ms_per_1k_tokens": round(off * per_1k, 3),
            "off_median_ms_per_1k_tokens": round(_median(times[None]) * per_1k, 3),
        }
        for strength in strengths:
            on = min(times[strength])
            row[f"{strength}_ms_per_1k_tokens"] = round(on * per_1k, 3)
            row[f"{strength}_added_ms_per_1k_tokens"] = round((on - off) * per_1k, 3)
            median = _median(times[strength]) - _median(times[None])
            row[f"{strength}_added_median_ms_per_1k_tokens"] = round(median * per_1k, 3)
        rows.append(row)
    return rows


def bpe_pieces(train: Sequence[str], vocab: int = BPE_VOCAB) -> Callable[[str], list[str]] | None:
    """A byte-level BPE tokenizer (as GPT models use) trained here on ``train`` in about a second (nothing is
    downloaded); returns text -> its tokens' pieces of text (None without the ``tokenizers`` package)."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError:
        return None
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator(train, trainer)

    def pieces(text: str) -> list[str]:
        out = [text[start:end] for start, end in tokenizer.encode(text).offsets]
        if "".join(out) != text:  # a character split over two byte-level tokens: keep it whole in the first
            raise SystemExit("the BPE pieces do not give the text back")
        return out

    return pieces


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def table(rows: Sequence[dict[str, Any]]) -> Table:
    out = Table(title="gateway streaming path (one delta per chunk and per read): CPU ms per 1k tokens")
    for c in ("text", "tokens", "events", "watermark off", "on, standard", "added", "on, strong", "added (strong)"):
        out.add_column(c, justify="right")
    for r in rows:
        out.add_row(
            r["text"],
            f"{r['tokens']:,}",
            f"{r['events']:,}",
            f"{r['off_ms_per_1k_tokens']}",
            f"{r['standard_ms_per_1k_tokens']}",
            f"{r['standard_added_ms_per_1k_tokens']}",
            f"{r['strong_ms_per_1k_tokens']}",
            f"{r['strong_added_ms_per_1k_tokens']}",
        )
    return out


def main() -> None:
    from watermark_text import Corpus, _corpus, alpaca_outputs, assistant_answers, pydoc_prose, token_deltas

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.corpus / "alpaca_seed_tasks.jsonl").is_file():
        print(f"no corpus at {args.corpus} (needs alpaca_seed_tasks.jsonl); skipping")
        return
    pydoc = _corpus("pydoc", pydoc_prose())
    alpaca = _corpus("alpaca", alpaca_outputs(args.corpus))
    answers = Corpus("answers", "\n\n".join(assistant_answers()))
    texts = {
        "answers 1000 words": answers.window(0, 1000),
        "pydoc 1000 words": pydoc.window(5000, 1000),
        "alpaca 1000 words": alpaca.window(2000, 1000),
        "pydoc 4000 words": pydoc.window(10000, 4000),
    }
    rows = added_cpu({name: token_deltas(text) for name, text in texts.items()}, STREAM_KEY, args.runs)
    # The same texts as a GPT-style tokenizer streams them: one BPE token per chunk, tokens counted exactly.
    bpe = bpe_pieces([pydoc.text, alpaca.text, answers.text])
    if bpe is not None:
        cut = {f"{name}, BPE": bpe(text) for name, text in texts.items()}
        rows += added_cpu(cut, STREAM_KEY, args.runs, {name: len(pieces) for name, pieces in cut.items()})
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ".venv/bin/python bench/watermark_stream.py --corpus /work/shared/data",
        "load_average": os.getloadavg(),
        "runs": args.runs,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    Console(width=None if sys.stdout.isatty() else 160).print(table(rows))


if __name__ == "__main__":
    main()
