"""The watermark on a streamed completion (watermark/stream.py) through the gateway's relay (gateway/sse.py)."""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.gateway.sse import ChunkRelay, CompletionTap, SSESplitter, event_data
from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.stream import Ready
from distillguard.watermark.text import LEVELS, Engine, Strength, derive_key, mark

KEY = derive_key(b"test-response-chunks")
TEXT = (
    "It is not hard to see why. However, it is often said that we do not know. Great question! "
    "In fact, the answer is quite simple, and it is not often wrong: we can't say more."
)
BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        j = i + rng.randrange(1, 8)
        out.append(text[i:j])
        i = j
    return out


def chat(choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {**BASE, "choices": choices, **extra}


def delta(content: Any, index: Any = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": {"content": content, **fields}, "logprobs": None, "finish_reason": finish}


def stream(shapes: str, seed: int = 0) -> list[dict[str, Any]]:
    """A chat stream of TEXT in small deltas, each chunk of the shape its letter names."""
    parts = pieces(TEXT, seed)
    chunks: list[dict[str, Any]] = [chat([delta("", role="assistant", refusal=None)])]
    for n, part in enumerate(parts):
        shape = shapes[n % len(shapes)]
        if shape == "p":  # plain: the common shape
            chunks.append(chat([delta(part)], usage=None))
        elif shape == "n":  # two choices in one chunk (n=2)
            chunks.append(chat([delta(part), delta(part.upper(), index=1)]))
        elif shape == "i":  # n=2 as OpenAI streams it: one choice per chunk, the indices taking turns
            chunks.append(chat([delta(part)]))
            chunks.append(chat([delta(part.upper(), index=1)]))
        elif shape == "a":  # no index
            chunks.append(chat([{"delta": {"content": part}, "finish_reason": None}]))
        elif shape == "o":  # index null, or a bool
            chunks.append(chat([{"index": None if n % 2 else True, "delta": {"content": part}}]))
        elif shape == "r":  # a reasoning delta beside the content
            chunks.append(chat([delta(part, reasoning_content="thinking")]))
        elif shape == "e":  # an empty delta, then the content
            chunks.append(chat([{"index": 0, "delta": {}, "finish_reason": None}]))
            chunks.append(chat([delta(part)]))
        elif shape == "f":  # a finish_reason chunk that also carries text (some upstreams send one)
            chunks.append(chat([delta(part, finish="length")]))
    chunks.append(chat([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    chunks.append(chat([{"index": 1, "delta": {}, "finish_reason": "stop"}]))
    chunks.append(chat([], usage={"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43}))
    return chunks


ODD: list[dict[str, Any]] = [
    {"choices": {"0": {"delta": {"content": "It is not"}}}},
    {"choices": {"x": 1}},
    {"choices": "x"},
    {"choices": ({"index": 0, "delta": {"content": "It is not hard"}},)},
    {"choices": None},
    {"choices": [None]},
    {"choices": [["delta"]]},
    {"choices": [{"delta": None}]},
    {"choices": [{"delta": "It is not"}]},
    {"choices": [{"delta": ["content"]}]},
    {"choices": [{"delta": {"content": None}}]},
    {"choices": [{"delta": {"content": 5}}]},
    {"choices": [{"index": "0", "delta": {"content": "It is not hard"}}]},
    {"choices": [{"index": 2.0, "delta": {"content": " we do not"}}]},
    {"choices": [{"text": "It is not"}]},
    {"error": {"message": "boom"}},
    {},
]


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def relay(
    chunks: list[dict[str, Any]], chat_api: bool = True, done: bool = True, strength: Strength = "strong"
) -> tuple[list[bytes], list[bytes], str, dict[str, Any]]:
    """The chunks (numbered in a "seq" field) through the gateway's relay with the watermark, one event per read:
    the events sent, the events the client got, what the event log keeps, and the watermark's summary."""
    chunks = [{**chunk, "seq": n} for n, chunk in enumerate(copy.deepcopy(chunks))]
    sent = [sse(chunk) for chunk in chunks] + ([b"data: [DONE]\n\n"] if done else [])
    watermarker = ResponseWatermarker(KEY, strength, chat=chat_api)
    tap = CompletionTap(chat=chat_api)
    chunk_relay = ChunkRelay(tap, None, hide_usage=False, marker=watermarker.stream())
    out = b"".join(part for data in sent if (part := chunk_relay.feed(data)) is not None)
    out += chunk_relay.close() or b""
    splitter = SSESplitter()
    return sent, splitter.feed(out), tap.text, watermarker.summary()


def reference(chunks: list[dict[str, Any]], chat_api: bool = True, strength: Strength = "strong") -> dict[int, str]:
    """Each choice's text as the engine writes it fed piece by piece (flushed at a finish_reason and at the end)."""
    engines: dict[int, Engine] = {}
    out: dict[int, str] = {}
    for chunk in chunks:
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            continue
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            holder = choice.get("delta") if chat_api else choice
            text = holder.get("content" if chat_api else "text") if isinstance(holder, dict) else None
            index = choice.get("index")
            index = index if isinstance(index, int) else position
            finishing = choice.get("finish_reason") is not None
            if not (isinstance(text, str) and text) and not finishing:
                continue
            engine = engines.setdefault(index, Engine(KEY, LEVELS[strength]))
            out[index] = out.get(index, "") + (engine.feed(text) if isinstance(text, str) else "")
            if finishing:
                out[index] += engine.flush()
    for index, engine in engines.items():
        out[index] += engine.flush()
    return out


def received(events: list[bytes], chat_api: bool = True) -> tuple[dict[int, str], list[int]]:
    """Each choice's text as the client reads it, and the "seq" of each event (in the order they came)."""
    texts: dict[int, str] = {}
    order = []
    for event in events:
        payload = event_data(event)
        if payload is None or payload == b"[DONE]":
            continue
        chunk = orjson.loads(payload)
        if "seq" in chunk:
            order.append(chunk["seq"])
        choices = chunk.get("choices")
        for position, choice in enumerate(choices if isinstance(choices, list) else []):
            if not isinstance(choice, dict):
                continue
            holder = choice.get("delta") if chat_api else choice
            text = holder.get("content" if chat_api else "text") if isinstance(holder, dict) else None
            if isinstance(text, str):
                index = choice.get("index")
                index = index if isinstance(index, int) else position
                texts[index] = texts.get(index, "") + text
    return texts, order


@pytest.mark.parametrize("shapes", ["p", "pi", "pn", "pa", "po", "pr", "pe", "ppf", "pinaoref", "n"])
def test_every_shape_comes_out_marked_in_order_and_whole(shapes: str) -> None:
    for seed in range(3):
        chunks = stream(shapes, seed)
        _, got, logged, summary = relay(chunks)
        texts, order = received(got)
        expected = reference(chunks)
        assert texts == {i: t for i, t in expected.items() if t}
        assert order == list(range(len(chunks)))  # every event once, in order
        assert logged == texts[0] and summary["sites"] > 0
        assert got[-1] == b"data: [DONE]\n\n"


def test_an_event_goes_out_as_it_came_unless_a_site_in_it_was_rewritten() -> None:
    chunks = stream("p")
    sent, got, _, summary = relay(chunks)
    texts, _ = received(got)
    assert texts[0] == mark(TEXT, KEY, "strong") != TEXT and summary["changed"] > 0
    as_sent = [event for event in got if event in sent]
    rebuilt = [event for event in got if event not in sent]
    # Only the events in which a rewrite differs from what came (a site's differing part spans two small deltas at
    # most here): before, every event a rewritten site's words touched was serialised again.
    assert 0 < len(rebuilt) <= 2 * summary["changed"] and len(as_sent) > 3 * len(rebuilt)
    for event in rebuilt:  # only the text differs
        chunk = orjson.loads(event[6:])
        original = orjson.loads(sent[chunk["seq"]][6:])
        original["choices"][0]["delta"]["content"] = chunk["choices"][0]["delta"]["content"]
        assert chunk == original


def test_an_event_waits_only_for_the_words_that_may_change() -> None:
    """An event goes out as soon as the engine has released its text: never more than a site's words later."""
    marker = ResponseWatermarker(KEY, "standard", chat=True).stream()
    fed = out = most = 0
    for chunk in stream("p"):
        ready: list[Ready] = []
        marker.event(sse(chunk), chunk, ready)
        fed += 1
        out += len(ready)
        most = max(most, fed - out)
    assert out == fed  # all out by the end (the finish_reason chunk)
    assert most <= 8  # a site's words and the two tokens after them, in pieces of up to 7 characters


def test_odd_chunks_pass_in_order_and_break_nothing() -> None:
    for chat_api in (True, False):
        chunks = stream("p") + ODD + stream("p", 1)
        _, got, _, _ = relay(chunks, chat_api)
        texts, order = received(got, chat_api)
        assert order == list(range(len(chunks)))
        expected = reference([orjson.loads(orjson.dumps(c)) for c in chunks], chat_api)  # as sent: tuples are lists
        assert texts == {i: t for i, t in expected.items() if t}


def test_a_stream_cut_off_before_its_finish_reason_delivers_the_held_words_before_done() -> None:
    chunks = [chat([delta(part)]) for part in ("It", " is", " not")]
    for done in (True, False):
        _, got, logged, _ = relay(chunks, done=done)
        texts, order = received(got)
        assert texts[0] == logged == mark("It is not", KEY, "strong")
        assert order == [0, 1, 2]
        assert (got[-1] == b"data: [DONE]\n\n") is done


def test_what_the_engine_holds_is_the_end_of_its_input_and_what_it_released_unchanged_is_the_rest() -> None:
    """The marker's offsets rest on these (watermark/stream.py): ``Engine.held`` is the input after the last
    release, as it came, and a call that rewrote no site released the input before it as it came."""
    text = TEXT * 6 + '\n\n```python\nx = 1  # it is not\n```\n\nDr. Smith said: "it is not".  Then $x$ it\'s.'
    for seed in range(20):
        engine = Engine(KEY, 2)
        fed = ""
        for part in pieces(text, seed):
            changed, before = engine.changed, engine.held()
            fed += part
            out = engine.feed(part)
            assert fed.endswith(engine.held())
            if engine.changed == changed:
                assert before + part == out + engine.held()
        assert engine.flush() and engine.held() == ""


def test_the_compiled_build_and_the_python_source_send_the_same_bytes() -> None:
    """The gateway runs the compiled modules (setup.py); DISTILLGUARD_PURE=1 loads the sources: same events."""
    script = (
        "import sys, orjson; sys.path.insert(0, 'tests/watermark'); import test_stream as t; "
        "from distillguard.native import compiled; "
        "events = [e.decode() for e in t.relay(t.stream('pinaoref'))[1]]; "
        "print(orjson.dumps({'compiled': compiled(), 'events': events}).decode())"
    )
    root = Path(__file__).resolve().parents[2]
    runs = {}
    for pure in ("", "1"):
        env = {**os.environ, "DISTILLGUARD_PURE": pure}
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        runs[pure] = orjson.loads(out.stdout)
    assert runs["1"]["compiled"] is False
    assert runs[""]["events"] == runs["1"]["events"]


def test_a_broken_stream_still_delivers_the_held_words_but_not_a_cut_event() -> None:
    chunks = [chat([delta(part)], seq=n) for n, part in enumerate(("It", " is", " not"))]
    watermarker = ResponseWatermarker(KEY, "strong", chat=True)
    chunk_relay = ChunkRelay(CompletionTap(chat=True), None, hide_usage=False, marker=watermarker.stream())
    sent = b"".join(part for c in chunks if (part := chunk_relay.feed(sse(c))) is not None)
    assert chunk_relay.feed(b'data: {"choices": [{"delta": {"brok') is None  # the upstream broke here
    sent += chunk_relay.close(broken=True) or b""
    texts, order = received(SSESplitter().feed(sent))
    assert texts[0] == mark("It is not", KEY, "strong") and order == [0, 1, 2]
    assert b"brok" not in sent
