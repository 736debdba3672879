"""ResponseWatermarker.chunk: the short way for the common chunk shape does what the loop over every shape does."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.text import derive_key, mark

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


def run(chunks: list[dict[str, Any]], general: bool, chat_api: bool = True) -> tuple[list[Any], dict[str, Any]]:
    marker = ResponseWatermarker(KEY, "strong", chat=chat_api)
    step = marker._chunk if general else marker.chunk
    changed = [step(chunk) for chunk in chunks]
    return [changed, chunks], marker.summary()


@pytest.mark.parametrize("shapes", ["p", "pi", "pn", "pa", "po", "pr", "pe", "ppf", "pinaoref", "n"])
def test_every_shape_comes_out_as_the_loop_over_every_shape_leaves_it(shapes: str) -> None:
    for seed in range(3):
        chunks = stream(shapes, seed)
        short, short_summary = run(copy.deepcopy(chunks), general=False)
        loop, loop_summary = run(copy.deepcopy(chunks), general=True)
        assert short == loop and short_summary == loop_summary
        assert short_summary["sites"] > 0


def test_odd_chunks_are_left_to_the_loop() -> None:
    for chat_api in (True, False):
        chunks = stream("p") + ODD + stream("p", 1)
        assert run(copy.deepcopy(chunks), False, chat_api) == run(copy.deepcopy(chunks), True, chat_api)


def test_the_text_of_a_plain_stream_is_the_text_marked_whole() -> None:
    chunks = stream("p")
    marker = ResponseWatermarker(KEY, "strong", chat=True)
    changed = [marker.chunk(chunk) for chunk in chunks]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == mark(TEXT, KEY, "strong") != TEXT
    assert any(changed) and not all(changed)  # False when the engine released the delta as it came


def test_the_common_shape_takes_the_short_way(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = ResponseWatermarker(KEY, "standard", chat=True)
    chunks = stream("p")[1:-3]  # the content chunks only

    def loop(payload: dict[str, Any]) -> bool:
        raise AssertionError(f"the loop over every shape got {payload}")

    monkeypatch.setattr(marker, "_chunk", loop)
    assert any([marker.chunk(chunk) for chunk in chunks])
