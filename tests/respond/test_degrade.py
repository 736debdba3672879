"""Degraded service: request caps and log-probability policy, reasoning and log-probabilities cut from responses."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from distillguard.config import DegradeConfig
from distillguard.respond.degrade import (
    CHAT,
    COMPLETIONS,
    DegradeRefused,
    ResponseDegrader,
    degrade_request,
)

CHAT_BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
TEXT_BODY: dict[str, Any] = {"model": "m", "prompt": "hi"}
NO_CAPS = DegradeConfig(max_tokens_cap=None, n_cap=None)


# Requests


@pytest.mark.parametrize(
    ("endpoint", "extra", "param"),
    [
        (CHAT, {"logprobs": True}, "logprobs"),
        (CHAT, {"logprobs": True, "top_logprobs": 5}, "logprobs"),
        (CHAT, {"top_logprobs": 3}, "top_logprobs"),
        (COMPLETIONS, {"logprobs": 0}, "logprobs"),
        (COMPLETIONS, {"logprobs": 5, "echo": True}, "logprobs"),
        (COMPLETIONS, {"prompt_logprobs": 1}, "prompt_logprobs"),
    ],
)
def test_logprob_requests_are_dropped_or_refused(endpoint: str, extra: dict[str, Any], param: str) -> None:
    body = {**(CHAT_BODY if endpoint == CHAT else TEXT_BODY), **extra}
    snapshot = copy.deepcopy(body)

    out, changes = degrade_request(body, endpoint, NO_CAPS)
    assert changes == ["logprobs_dropped"]
    assert not {"logprobs", "top_logprobs", "prompt_logprobs"} & out.keys()
    assert out.get("echo") == extra.get("echo")  # echo alone is not a log-probability
    assert body == snapshot

    with pytest.raises(DegradeRefused) as refused:
        degrade_request(body, endpoint, NO_CAPS.model_copy(update={"logprobs": "refuse"}))
    assert refused.value.param == param
    assert "not available for this account" in refused.value.message
    assert "restricted" in refused.value.message
    assert body == snapshot

    kept, changes = degrade_request(body, endpoint, NO_CAPS.model_copy(update={"logprobs": "keep"}))
    assert (kept, changes) == (body, [])


@pytest.mark.parametrize("policy", ["drop", "refuse"])
@pytest.mark.parametrize(
    ("endpoint", "extra"),
    [(CHAT, {"logprobs": False}), (CHAT, {"logprobs": None, "top_logprobs": None}), (COMPLETIONS, {"logprobs": None})],
)
def test_not_asking_for_logprobs_is_left_alone(endpoint: str, extra: dict[str, Any], policy: str) -> None:
    body = {**(CHAT_BODY if endpoint == CHAT else TEXT_BODY), **extra}
    out, changes = degrade_request(body, endpoint, NO_CAPS.model_copy(update={"logprobs": policy}))
    assert (out, changes) == (body, [])
    assert out is not body


@pytest.mark.parametrize(
    ("endpoint", "extra", "expected", "changes"),
    [
        # Neither limit given (or null): max_tokens is added.
        (CHAT, {}, {"max_tokens": 100}, ["max_tokens_capped:100"]),
        (COMPLETIONS, {}, {"max_tokens": 100}, ["max_tokens_capped:100"]),
        (CHAT, {"max_tokens": None}, {"max_tokens": 100}, ["max_tokens_capped:100"]),
        # Lowered, every limit that is over the cap.
        (CHAT, {"max_tokens": 5000}, {"max_tokens": 100}, ["max_tokens_capped:100"]),
        (
            CHAT,
            {"max_tokens": 5000, "max_completion_tokens": 50},
            {"max_tokens": 100, "max_completion_tokens": 50},
            ["max_tokens_capped:100"],
        ),
        (CHAT, {"max_completion_tokens": 101}, {"max_completion_tokens": 100}, ["max_tokens_capped:100"]),
        (COMPLETIONS, {"max_tokens": 4096}, {"max_tokens": 100}, ["max_tokens_capped:100"]),
        # Never raised; at the cap is left.
        (CHAT, {"max_tokens": 10}, {"max_tokens": 10}, []),
        (CHAT, {"max_completion_tokens": 100}, {"max_completion_tokens": 100}, []),
        (COMPLETIONS, {"max_tokens": 1}, {"max_tokens": 1}, []),
        # Invalid values are validation's business.
        (CHAT, {"max_tokens": "lots"}, {"max_tokens": "lots"}, []),
        (CHAT, {"max_tokens": -1}, {"max_tokens": -1}, []),
        (CHAT, {"max_tokens": True}, {"max_tokens": True}, []),
        # max_completion_tokens is not a legacy completions parameter: max_tokens is added beside it.
        (
            COMPLETIONS,
            {"max_completion_tokens": 5000},
            {"max_completion_tokens": 5000, "max_tokens": 100},
            ["max_tokens_capped:100"],
        ),
    ],
)
def test_max_tokens_is_capped_or_added(
    endpoint: str, extra: dict[str, Any], expected: dict[str, Any], changes: list[str]
) -> None:
    base = CHAT_BODY if endpoint == CHAT else TEXT_BODY
    body = {**base, **extra}
    snapshot = copy.deepcopy(body)
    out, applied = degrade_request(body, endpoint, DegradeConfig(max_tokens_cap=100, n_cap=None))
    assert out == {**base, **expected}
    assert applied == changes
    assert body == snapshot


@pytest.mark.parametrize(
    ("endpoint", "extra", "expected", "changes"),
    [
        (CHAT, {"n": 8}, {"n": 2}, ["n_capped:2"]),
        (CHAT, {"n": 2}, {"n": 2}, []),
        (CHAT, {"n": 1}, {"n": 1}, []),
        (CHAT, {}, {}, []),
        (CHAT, {"n": "8"}, {"n": "8"}, []),
        (CHAT, {"best_of": 9}, {"best_of": 9}, []),  # not a chat parameter
        (COMPLETIONS, {"n": 4, "best_of": 6}, {"n": 2, "best_of": 2}, ["n_capped:2"]),
        (COMPLETIONS, {"n": 1, "best_of": 6}, {"n": 1, "best_of": 2}, ["n_capped:2"]),
        (COMPLETIONS, {"n": 2, "best_of": 2}, {"n": 2, "best_of": 2}, []),
    ],
)
def test_n_and_best_of_are_capped(
    endpoint: str, extra: dict[str, Any], expected: dict[str, Any], changes: list[str]
) -> None:
    base = CHAT_BODY if endpoint == CHAT else TEXT_BODY
    body = {**base, **extra}
    out, applied = degrade_request(body, endpoint, DegradeConfig(max_tokens_cap=None, n_cap=2))
    assert out == {**base, **expected}
    assert applied == changes


def test_all_changes_together_in_vocabulary_order() -> None:
    body = {**TEXT_BODY, "logprobs": 3, "max_tokens": 9000, "n": 5, "best_of": 5, "stream": True}
    snapshot = copy.deepcopy(body)
    out, changes = degrade_request(body, COMPLETIONS, DegradeConfig())
    assert changes == ["logprobs_dropped", "max_tokens_capped:1024", "n_capped:1"]
    assert out == {**TEXT_BODY, "max_tokens": 1024, "n": 1, "best_of": 1, "stream": True}
    assert body == snapshot


def test_default_config_degrades_a_plain_chat_request_by_adding_the_cap() -> None:
    out, changes = degrade_request(CHAT_BODY, CHAT, DegradeConfig())
    assert out == {**CHAT_BODY, "max_tokens": 1024}
    assert changes == ["max_tokens_capped:1024"]
    assert "max_tokens" not in CHAT_BODY


def test_nothing_applies_with_everything_kept() -> None:
    body = {**CHAT_BODY, "logprobs": True, "max_tokens": 10**6, "n": 50}
    config = DegradeConfig(logprobs="keep", max_tokens_cap=None, n_cap=None)
    out, changes = degrade_request(body, CHAT, config)
    assert (out, changes) == (body, [])
    assert out is not body


def test_unknown_endpoint_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a completion endpoint"):
        degrade_request(CHAT_BODY, "/v1/embeddings", DegradeConfig())


def test_config_bounds() -> None:
    with pytest.raises(ValueError, match="greater than or equal"):
        DegradeConfig(max_tokens_cap=0)
    with pytest.raises(ValueError, match="greater than or equal"):
        DegradeConfig(summary_chars=-1)
    with pytest.raises(ValueError, match="reasoning"):
        DegradeConfig(reasoning="hide")


# Whole responses

REASONING = "First, consider the problem carefully. Then solve it."


def chat_response(message: dict[str, Any], logprobs: Any = None) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
        }
    )


def message_of(body: bytes, index: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(body)["choices"][index]["message"]
    return message


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_whole_reasoning_is_dropped(key: str) -> None:
    degrader = ResponseDegrader(DegradeConfig(), chat=True)
    out = degrader.whole(chat_response({"role": "assistant", "content": "42", key: REASONING}))
    assert message_of(out) == {"role": "assistant", "content": "42"}
    assert degrader.applied == ["reasoning_dropped"]
    assert degrader.reasoning_chars_removed == len(REASONING)
    assert orjson.loads(out)["usage"]["total_tokens"] == 12  # the rest is untouched


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_whole_reasoning_is_summarised(key: str) -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=14), chat=True)
    out = degrader.whole(chat_response({"role": "assistant", "content": "42", key: REASONING}))
    assert message_of(out) == {"role": "assistant", "content": "42", key: "First, conside […]"}
    assert degrader.applied == ["reasoning_summarised"]
    assert degrader.reasoning_chars_removed == len(REASONING) - 14


def test_whole_short_reasoning_is_not_summarised_and_bytes_are_returned_as_they_were() -> None:
    body = chat_response({"role": "assistant", "content": "42", "reasoning_content": REASONING})
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=len(REASONING)), chat=True)
    assert degrader.whole(body) is body
    assert degrader.applied == []
    assert degrader.reasoning_chars_removed == 0


def test_whole_structured_reasoning_is_dropped_even_when_summarising() -> None:
    message = {
        "role": "assistant",
        "content": "42",
        "reasoning": {"steps": ["a", "b"]},
        "reasoning_details": [{"type": "reasoning.text", "text": "a b"}],
    }
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise"), chat=True)
    out = degrader.whole(chat_response(message))
    assert message_of(out) == {"role": "assistant", "content": "42"}
    assert degrader.applied == ["reasoning_dropped"]


def test_whole_both_reasoning_fields_are_handled() -> None:
    message = {"role": "assistant", "content": "42", "reasoning_content": REASONING, "reasoning": REASONING}
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=5), chat=True)
    out = degrader.whole(chat_response(message))
    assert message_of(out) == {
        "role": "assistant",
        "content": "42",
        "reasoning_content": "First […]",
        "reasoning": "First […]",
    }
    assert degrader.reasoning_chars_removed == 2 * (len(REASONING) - 5)


def test_whole_logprobs_are_removed_but_kept_when_the_policy_keeps_them() -> None:
    logprobs = {"content": [{"token": "42", "logprob": -0.01, "top_logprobs": []}]}
    body = chat_response({"role": "assistant", "content": "42"}, logprobs=logprobs)

    degrader = ResponseDegrader(DegradeConfig(), chat=True)
    out = degrader.whole(body)
    assert orjson.loads(out)["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "42"},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert degrader.applied == ["logprobs_removed"]

    keeper = ResponseDegrader(DegradeConfig(logprobs="keep"), chat=True)
    assert keeper.whole(body) is body


def test_whole_text_completion_loses_logprobs_only() -> None:
    body = orjson.dumps(
        {
            "object": "text_completion",
            "choices": [
                {"index": 0, "text": "abc", "logprobs": {"tokens": ["abc"], "token_logprobs": [-0.5]}},
                {"index": 1, "text": "abd", "logprobs": None, "reasoning_content": "not a chat field"},
            ],
        }
    )
    degrader = ResponseDegrader(DegradeConfig(), chat=False)
    choices = orjson.loads(degrader.whole(body))["choices"]
    assert choices == [
        {"index": 0, "text": "abc", "logprobs": None},
        {"index": 1, "text": "abd", "logprobs": None, "reasoning_content": "not a chat field"},
    ]
    assert degrader.applied == ["logprobs_removed"]


def test_whole_vllm_prompt_logprobs_are_removed() -> None:
    body = orjson.dumps(
        {"choices": [{"index": 0, "text": "a", "prompt_logprobs": [None, {"1": -1.0}]}], "prompt_logprobs": [None]}
    )
    degrader = ResponseDegrader(DegradeConfig(), chat=False)
    payload = orjson.loads(degrader.whole(body))
    assert payload["prompt_logprobs"] is None
    assert payload["choices"][0]["prompt_logprobs"] is None


def test_whole_with_nothing_to_do_returns_the_same_bytes() -> None:
    body = chat_response({"role": "assistant", "content": "42", "reasoning_content": None})
    degrader = ResponseDegrader(DegradeConfig(reasoning="drop"), chat=True)
    assert degrader.whole(body) is body
    with_reasoning = chat_response({"role": "assistant", "content": "42", "reasoning_content": REASONING})
    assert ResponseDegrader(DegradeConfig(reasoning="keep"), chat=True).whole(with_reasoning) is with_reasoning
    assert degrader.applied == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'"text"',
        b'{"error": {"message": "overloaded"}}',
        b'{"choices": "nope"}',
        b'{"choices": [1, null, "x", {"message": "odd"}, {"message": null}]}',
    ],
)
def test_whole_passes_odd_bodies_through(body: bytes) -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=1), chat=True)
    assert degrader.whole(body) is body
    assert degrader.applied == []


# Streamed chunks


def reasoning_chunk(text: Any, index: int | None = 0, key: str = "reasoning_content") -> dict[str, Any]:
    choice: dict[str, Any] = {"delta": {key: text}, "logprobs": None, "finish_reason": None}
    if index is not None:
        choice["index"] = index
    return {"id": "c", "object": "chat.completion.chunk", "choices": [choice]}


def stream_reasoning(degrader: ResponseDegrader, parts: list[str], index: int | None = 0) -> tuple[str, list[bool]]:
    """Feed parts as reasoning deltas; the reasoning that came out, and what chunk() returned for each."""
    out: list[str] = []
    returned: list[bool] = []
    for part in parts:
        chunk = reasoning_chunk(part, index)
        returned.append(degrader.chunk(chunk))
        delta = chunk["choices"][0]["delta"]
        out.append(delta.get("reasoning_content", ""))
    return "".join(out), returned


@pytest.mark.parametrize(
    ("parts", "summary_chars", "expected", "returned"),
    [
        (["First, ", "consider ", "the problem."], 10, "First, con […]", [False, True, True]),
        # A delta ending exactly on the limit passes whole; the mark comes with the next one.
        (["First, ", "con", "sider", " it"], 10, "First, con […]", [False, False, True, True]),
        (["ab", "cd"], 4, "abcd", [False, False]),
        (["abc", "", "defgh", "ij"], 4, "abcd […]", [False, False, True, True]),
        (["whatever", "more"], 0, " […]", [True, True]),
    ],
)
def test_stream_reasoning_is_summarised_across_chunks(
    parts: list[str], summary_chars: int, expected: str, returned: list[bool]
) -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=summary_chars), chat=True)
    text, changed = stream_reasoning(degrader, parts)
    assert text == expected
    assert changed == returned
    assert degrader.reasoning_chars_removed == len("".join(parts)) - min(summary_chars, len("".join(parts)))
    assert degrader.applied == (["reasoning_summarised"] if any(returned) else [])


def test_stream_summary_matches_the_whole_response_summary() -> None:
    config = DegradeConfig(reasoning="summarise", summary_chars=17)
    text, _ = stream_reasoning(ResponseDegrader(config, chat=True), [REASONING[i : i + 4] for i in range(0, 60, 4)])
    whole = ResponseDegrader(config, chat=True).whole(chat_response({"role": "assistant", "reasoning": REASONING}))
    assert text == message_of(whole)["reasoning"] == "First, consider t […]"


def test_stream_choices_are_summarised_separately() -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=6), chat=True)
    got: dict[int, list[str]] = {0: [], 1: []}
    for index, part in [(0, "abcd"), (1, "ABCD"), (0, "efgh"), (1, "EF"), (1, "GH"), (0, "ijk"), (1, "IJK")]:
        chunk = reasoning_chunk(part, index)
        degrader.chunk(chunk)
        got[index].append(chunk["choices"][0]["delta"].get("reasoning_content", ""))
    assert "".join(got[0]) == "abcdef […]"
    assert "".join(got[1]) == "ABCDEF […]"


def test_stream_choice_without_index_counts_as_choice_zero() -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=3), chat=True)
    first, second = reasoning_chunk("ab", None), reasoning_chunk("cd", 0)
    degrader.chunk(first)
    degrader.chunk(second)
    assert second["choices"][0]["delta"] == {"reasoning_content": "c […]"}


def test_stream_reasoning_fields_are_counted_separately() -> None:
    # Servers that send the same trace under both names get the same summary under both.
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=5), chat=True)
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": part, "reasoning": part}}]}
        for part in ("Fir", "st, ", "go")
    ]
    for chunk in chunks:
        degrader.chunk(chunk)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "First […]"
    assert "".join(d.get("reasoning", "") for d in deltas) == "First […]"


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning", "reasoning_details"])
def test_stream_reasoning_is_dropped(key: str) -> None:
    degrader = ResponseDegrader(DegradeConfig(), chat=True)
    chunk = reasoning_chunk("think" if key != "reasoning_details" else [{"text": "think"}], key=key)
    chunk["choices"][0]["delta"]["content"] = None
    assert degrader.chunk(chunk) is True
    assert chunk["choices"][0]["delta"] == {"content": None}
    assert degrader.applied == ["reasoning_dropped"]
    assert degrader.reasoning_chars_removed == (5 if key != "reasoning_details" else 0)

    emptied = reasoning_chunk("more")
    assert degrader.chunk(emptied) is True
    assert emptied["choices"][0]["delta"] == {}  # the chunk stays; the gateway forwards it


def test_stream_content_and_null_reasoning_are_left_alone() -> None:
    degrader = ResponseDegrader(DegradeConfig(), chat=True)
    chunk = {"choices": [{"index": 0, "delta": {"content": "42", "reasoning_content": None}, "logprobs": None}]}
    snapshot = copy.deepcopy(chunk)
    assert degrader.chunk(chunk) is False
    assert chunk == snapshot
    assert degrader.applied == []


def test_stream_reasoning_kept_when_the_policy_keeps_it() -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="keep"), chat=True)
    chunk = reasoning_chunk("think")
    assert degrader.chunk(chunk) is False
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "think"}


@pytest.mark.parametrize("chat", [True, False])
def test_stream_logprobs_are_removed(chat: bool) -> None:
    degrader = ResponseDegrader(DegradeConfig(), chat=chat)
    choice: dict[str, Any] = {"index": 0, "logprobs": {"content": [{"token": "a", "logprob": -1.0}]}}
    choice.update({"delta": {"content": "a"}} if chat else {"text": "a"})
    chunk = {"choices": [choice]}
    assert degrader.chunk(chunk) is True
    assert choice["logprobs"] is None
    assert choice.get("delta", {"content": "a"}) == {"content": "a"}
    assert degrader.applied == ["logprobs_removed"]

    keeper = ResponseDegrader(DegradeConfig(logprobs="keep"), chat=chat)
    kept = {"choices": [{"index": 0, "logprobs": {"content": []}, "text": "a"}]}
    assert keeper.chunk(kept) is False
    assert kept["choices"][0]["logprobs"] == {"content": []}


def test_text_completion_stream_ignores_reasoning_like_fields() -> None:
    degrader = ResponseDegrader(DegradeConfig(), chat=False)
    chunk = reasoning_chunk("think")
    assert degrader.chunk(chunk) is False
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "think"}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"choices": None},
        {"choices": "x"},
        {"choices": []},
        {"choices": [None, 1, "x", []]},
        {"choices": [{"delta": None}, {"delta": "x"}, {"delta": []}, {"index": "seven", "delta": {}}]},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
        {"error": {"message": "boom"}},
    ],
)
@pytest.mark.parametrize("reasoning", ["drop", "summarise", "keep"])
def test_stream_odd_chunks_do_not_raise_and_are_left(payload: dict[str, Any], reasoning: str) -> None:
    degrader = ResponseDegrader(DegradeConfig.model_validate({"reasoning": reasoning}), chat=True)
    snapshot = copy.deepcopy(payload)
    assert degrader.chunk(payload) is False
    assert payload == snapshot


def test_stream_odd_reasoning_values_do_not_raise() -> None:
    degrader = ResponseDegrader(DegradeConfig(reasoning="summarise", summary_chars=2), chat=True)
    weird = {"choices": [{"index": "x", "delta": {"reasoning_content": 12, "reasoning": {"a": 1}}}]}
    assert degrader.chunk(weird) is True
    assert weird["choices"][0]["delta"] == {}  # not text: cannot be summarised, so dropped
    assert degrader.applied == ["reasoning_dropped"]
    later = reasoning_chunk("abc", index=0)
    degrader.chunk(later)  # an index that is not an int was counted as choice 0 (nothing passed)
    assert later["choices"][0]["delta"] == {"reasoning_content": "ab […]"}
