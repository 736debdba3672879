"""Fields read straight from the request body: parameters, conversation shape, logprob harvesting, system hash."""

from __future__ import annotations

from typing import Any

import pytest

from distillguard.detect.signals import SIGNAL_COLUMNS, RequestSignals, as_row, extract
from distillguard.events.signals import to_signed64, to_unsigned64
from tests.detect.signals.helpers import chat


def test_columns_follow_the_dataclass_and_rows_follow_the_columns() -> None:
    assert SIGNAL_COLUMNS[:3] == ("cot", "training_data", "rubric")
    assert len(SIGNAL_COLUMNS) == 18 and SIGNAL_COLUMNS[-1] == "tools"
    signals = extract(chat("Let's think step by step: what is 2 + 2?", max_tokens=3))
    row = as_row(signals)
    assert len(row) == len(SIGNAL_COLUMNS)
    for column, value in zip(SIGNAL_COLUMNS, row, strict=True):
        if column == "content_sig":
            assert value == to_signed64(signals.content_sig)
        else:
            assert value == getattr(signals, column)


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_content_sig_is_stored_as_a_signed_int64_and_comes_back(value: int) -> None:
    signed = to_signed64(value)
    assert -(2**63) <= signed < 2**63
    assert to_unsigned64(signed) == value


def test_chat_parameters() -> None:
    s = extract(chat("hi", max_tokens=256, n=4, temperature=0.7, logprobs=True, top_logprobs=5))
    assert (s.max_tokens, s.n, s.temperature, s.top_logprobs) == (256, 4, 0.7, 5)
    assert not s.logprob_harvest


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert extract(chat("hi", max_tokens=100, max_completion_tokens=50)).max_tokens == 50


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_tokens": "100", "n": 0, "temperature": "hot"}, (None, 1, None)),
        ({"max_tokens": True, "n": True, "temperature": True}, (None, 1, None)),
        ({"max_tokens": 1.5, "n": -3, "temperature": float("nan")}, (None, 1, None)),
        ({"n": 2, "temperature": 0}, (None, 2, 0.0)),
        ({"temperature": 10**400}, (None, 1, None)),
    ],
)
def test_invalid_parameters_read_as_absent(params: dict[str, Any], expected: tuple[Any, ...]) -> None:
    s = extract(chat("hi", **params))
    assert (s.max_tokens, s.n, s.temperature) == expected


@pytest.mark.parametrize(
    ("endpoint", "request_body", "harvest", "top"),
    [
        ("/v1/chat/completions", chat("x", logprobs=True, top_logprobs=20, max_tokens=1), True, 20),
        ("/v1/chat/completions", chat("x", logprobs=True, top_logprobs=5, max_completion_tokens=5), True, 5),
        ("/v1/chat/completions", chat("x", logprobs=True, top_logprobs=5, max_tokens=6), False, 5),
        ("/v1/chat/completions", chat("x", logprobs=True, top_logprobs=5), False, 5),
        ("/v1/chat/completions", chat("x", logprobs=True, max_tokens=1), False, 0),
        ("/v1/chat/completions", chat("x", max_tokens=1), False, None),
        ("/v1/completions", {"prompt": "The capital of France is", "logprobs": 5, "max_tokens": 1}, True, 5),
        ("/v1/completions", {"prompt": "Score me", "logprobs": 0, "echo": True, "max_tokens": 0}, True, 0),
        ("/v1/completions", {"prompt": "x", "logprobs": 5, "max_tokens": 200}, False, 5),
        ("/v1/completions", {"prompt": "x", "logprobs": True, "max_tokens": 1}, False, None),
    ],
)
def test_logprob_harvest(endpoint: str, request_body: dict[str, Any], harvest: bool, top: int | None) -> None:
    s = extract(request_body, endpoint)
    assert (s.logprob_harvest, s.top_logprobs) == (harvest, top)


def test_conversation_shape() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What's the weather?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
            {"role": "tool", "content": "sunny", "tool_call_id": "1"},
            {"role": "assistant", "content": "It is sunny."},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}, {"type": "image_url"}]},
            "not a message",
        ]
    }
    s = extract(request)
    # depth counts the conversation's messages, not the system/developer instructions.
    assert (s.depth, s.user_turns) == (5, 2)
    assert s.prompt_chars == len("You are helpful.What's the weather?sunnyIt is sunny.And tomorrow?")
    assert s.domain == "agentic"  # tool calls in the conversation
    assert not s.tools  # ...but none offered in this request


def test_single_turn_depth_is_one_with_or_without_a_system_prompt() -> None:
    assert extract(chat("hi")).depth == 1
    assert extract(chat("You are terse.", role="system")).depth == 1


@pytest.mark.parametrize(
    "params",
    [{"tools": [{"type": "function", "function": {"name": "f"}}]}, {"functions": [{"name": "f"}]}],
)
def test_tools_offered(params: dict[str, Any]) -> None:
    s = extract(chat("Book me a table for two.", **params))
    assert s.tools and s.domain == "agentic"


def test_empty_tool_list_is_not_tools() -> None:
    assert not extract(chat("hi", tools=[])).tools


def test_text_completion_prompts() -> None:
    s = extract({"prompt": "Once upon a time", "max_tokens": 16}, "/v1/completions")
    assert (s.depth, s.user_turns, s.prompt_chars, s.system_prompt_hash) == (1, 1, 16, None)
    batch = extract({"prompt": ["First prompt here", "Second"]}, "/v1/completions")
    assert batch.prompt_chars == len("First prompt here") + len("Second")
    assert batch.template_id == extract({"prompt": "First prompt here"}, "/v1/completions").template_id
    tokens = extract({"prompt": [1, 2, 3]}, "/v1/completions")
    assert (tokens.prompt_chars, tokens.language) == (0, "und")


def test_system_prompt_hash_normalises_case_space_and_digits() -> None:
    a = extract(chat("You are a helpful assistant.\nToday is 2026-11-24.", role="system")).system_prompt_hash
    b = extract(chat("you are a  HELPFUL assistant. today is 2027-01-02.", role="system")).system_prompt_hash
    c = extract(chat("You are a pirate.", role="system")).system_prompt_hash
    assert a is not None and len(a) == 16 and int(a, 16) >= 0
    assert a == b != c
    assert extract(chat("hi")).system_prompt_hash is None
    assert extract(chat("   ", role="system")).system_prompt_hash is None


def test_developer_messages_count_as_system() -> None:
    dev = extract(chat("You are a pirate.", role="developer")).system_prompt_hash
    assert dev == extract(chat("You are a pirate.", role="system")).system_prompt_hash


def test_system_prompt_rules_apply() -> None:
    request = chat("You are an expert assistant. Answer every question as if training a student model.", "system")
    assert extract(request).training_data == "training_data.student_model"


def test_signals_are_frozen() -> None:
    s = extract(chat("hi"))
    assert isinstance(s, RequestSignals)
    with pytest.raises(AttributeError):
        s.cot = "x"  # type: ignore[misc]
