"""Pure pieces of the gateway: request checks, SSE handling, header formats, client IPs, token estimates."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from distillguard.gateway.client_ip import ClientIPResolver
from distillguard.gateway.errors import GatewayError
from distillguard.gateway.ratelimit_headers import format_reset
from distillguard.gateway.sse import CompletionTap, SSESplitter, event_data
from distillguard.gateway.tokens import estimate_prompt_tokens
from distillguard.gateway.validation import (
    CHAT,
    COMPLETIONS,
    CompletionRequest,
    parse_completion_request,
    parse_json_body,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0201, "21ms"), (1, "1s"), (7.66, "7.66s"), (59.5, "59.5s"), (360, "6m0s"), (3723, "1h2m3s")],
)
def test_reset_durations_read_like_openais(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_sse_splitter_yields_whole_events_across_arbitrary_chunking() -> None:
    stream = b'data: {"a": 1}\n\ndata: {"b": 2}\r\n\r\n: comment\n\ndata: [DONE]\n\n'
    for size in (1, 3, 7, len(stream)):
        splitter = SSESplitter()
        events = [e for i in range(0, len(stream), size) for e in splitter.feed(stream[i : i + size])]
        assert [event_data(e) for e in events] == [b'{"a": 1}', b'{"b": 2}', None, b"[DONE]"]
        assert splitter.remainder == b""


def test_tap_reads_text_finish_and_usage_from_chunks() -> None:
    tap = CompletionTap(chat=True)
    assert not tap.chunk({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})
    assert not tap.chunk({"choices": [{"index": 1, "delta": {"content": "other choice"}}]})
    assert not tap.chunk({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]})
    assert tap.chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    assert (tap.text, tap.finish_reason, tap.total_tokens) == ("Hello", "stop", 5)


def test_tap_reads_whole_text_completion() -> None:
    tap = CompletionTap(chat=False)
    tap.whole(orjson.dumps({"choices": [{"text": "abc", "finish_reason": "length"}], "usage": {"prompt_tokens": 1}}))
    assert (tap.text, tap.finish_reason, tap.prompt_tokens, tap.completion_tokens) == ("abc", "length", 1, None)


def test_valid_requests_parse() -> None:
    chat = parse_completion_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x" * 400}],
            "n": 2,
            "max_completion_tokens": 9,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        CHAT,
        1000,
    )
    assert (chat.n, chat.max_tokens, chat.stream, chat.include_usage) == (2, 9, True, True)
    assert chat.prompt_tokens_estimate == 400 // 4 + 4 + 3
    text = parse_completion_request({"model": "m", "prompt": ["a", "b"], "logprobs": 2}, COMPLETIONS, 1000)
    assert text.max_tokens is None and not text.stream


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": [{"role": "user"}], "logprobs": 1}, "logprobs"),
        ({"model": "m", "messages": [{"role": "user"}], "top_logprobs": 21}, "top_logprobs"),
        ({"model": "m", "messages": [{"role": "user"}], "tools": {}}, "tools"),
        ({"model": "m", "messages": [{"role": "user"}], "max_tokens": True}, "max_tokens"),
        ({"model": "", "messages": [{"role": "user"}]}, "model"),
    ],
)
def test_invalid_requests_name_the_parameter(body: dict[str, object], param: str) -> None:
    with pytest.raises(GatewayError) as err:
        parse_completion_request(body, CHAT, 1000)
    assert err.value.status == 400 and err.value.param == param


def test_text_prompt_is_required_for_completions() -> None:
    with pytest.raises(GatewayError) as err:
        parse_completion_request({"model": "m"}, COMPLETIONS, 10)
    assert err.value.param == "prompt"


def test_json_body_must_be_an_object_of_valid_utf8() -> None:
    assert parse_json_body(b'{"a": 1}') == {"a": 1}
    for raw, code in ((b"[]", "invalid_json"), (b"{", "invalid_json"), (b'{"a": "\xff"}', "invalid_encoding")):
        with pytest.raises(GatewayError) as err:
            parse_json_body(raw)
        assert err.value.code == code


def test_token_estimate_counts_text_parts_and_tools() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "abcd" * 10}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert estimate_prompt_tokens(body, chat=True) > 10 + 4


def test_client_ip_resolution() -> None:
    resolver = ClientIPResolver(["10.0.0.0/8", "::1/128"])
    assert resolver.resolve("10.0.0.1", "1.2.3.4, 10.9.9.9") == "1.2.3.4"
    assert resolver.resolve("192.0.2.1", "1.2.3.4") == "192.0.2.1"  # untrusted peer: header ignored
    assert resolver.resolve("::1", "2001:db8::5") == "2001:db8::5"
    assert resolver.resolve("10.0.0.1", "10.0.0.2, 10.0.0.3") == "10.0.0.2"  # all trusted: the far end
    assert resolver.resolve("10.0.0.1", "1.2.3.4, bogus, 10.0.0.3") == "10.0.0.3"
    assert ClientIPResolver([]).resolve("10.0.0.1", "1.2.3.4") == "10.0.0.1"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_field_values = {
    "model": st.text(max_size=300) | _json,
    "messages": st.lists(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "x", 1]), "content": _json}), max_size=3
    )
    | _json,
    "prompt": _json,
    "max_tokens": st.integers() | _json,
    "n": st.integers() | _json,
    "temperature": st.floats(allow_nan=True) | _json,
    "stream": _json,
    "stream_options": _json,
    "logprobs": _json,
    "top_logprobs": _json,
    "tools": _json,
}


@given(body=st.fixed_dictionaries({}, optional=_field_values), chat=st.booleans())
def test_any_body_is_either_a_request_or_a_400(body: dict[str, object], chat: bool) -> None:
    outcome: CompletionRequest | GatewayError
    try:
        outcome = parse_completion_request(body, CHAT if chat else COMPLETIONS, 100_000)
    except GatewayError as err:
        outcome = err
    if isinstance(outcome, GatewayError):
        assert outcome.status == 400 and outcome.code and outcome.message
    else:
        assert isinstance(outcome.model, str) and outcome.n >= 1 and outcome.prompt_tokens_estimate >= 1
        assert outcome.max_tokens is None or 1 <= outcome.max_tokens <= 100_000
