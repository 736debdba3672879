"""Checks of completion requests, before any upstream sees them, with OpenAI's error wording and codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from distillguard.gateway.errors import GatewayError, invalid
from distillguard.gateway.tokens import estimate_prompt_tokens

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_MAX_N = 128


@dataclass(slots=True)
class CompletionRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    # Whether the client itself asked for the usage chunk at the end of a stream.
    include_usage: bool
    n: int
    max_tokens: int | None
    prompt_tokens_estimate: int
    # The body differs from what the client sent (degraded): forward ``body``, not the raw bytes.
    rewritten: bool = False


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            raise invalid("The request body is not valid UTF-8.", code="invalid_encoding") from None
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload.)",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_in(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise invalid(
            f"Invalid type for '{name}': expected an integer, but got {type(value).__name__}.", name, "invalid_type"
        )
    if value < low:
        raise invalid(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value}.",
            name,
            "integer_below_min_value",
        )
    if value > high:
        raise invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value}.",
            name,
            "integer_above_max_value",
        )
    return int(value)


def _number_in(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise invalid(
            f"Invalid type for '{name}': expected a number, but got {type(value).__name__}.", name, "invalid_type"
        )
    if not low <= value <= high:
        raise invalid(f"Invalid '{name}': expected a value between {low} and {high}, but got {value}.", name)


def _bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(
            f"Invalid type for '{name}': expected a boolean, but got {type(value).__name__}.", name, "invalid_type"
        )
    return value


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise invalid("Invalid 'messages': expected a non-empty array of message objects.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type")
        role = message.get("role")
        if role not in _ROLES:
            raise invalid(
                f"Invalid value for 'messages[{i}].role': {role!r} is not one of {sorted(_ROLES)}.",
                f"messages[{i}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise invalid(
                f"Invalid type for 'messages[{i}].content': expected a string or an array.",
                f"messages[{i}].content",
                "invalid_type",
            )


def _check_prompt(prompt: Any) -> None:
    if prompt is None:
        raise invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and all(isinstance(p, str | int | list) for p in prompt):
        return
    raise invalid(
        "Invalid type for 'prompt': expected a string, an array of strings or of token arrays.",
        "prompt",
        "invalid_type",
    )


def parse_completion_request(body: dict[str, Any], endpoint: str, max_tokens_cap: int) -> CompletionRequest:
    """Validate a chat or text completion body; raises :class:`GatewayError` (400) naming the bad parameter."""
    model = body.get("model")
    if model is None:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise invalid("Invalid 'model': expected a non-empty string of at most 256 characters.", "model")
    if endpoint == CHAT:
        _check_messages(body.get("messages"))
        top = body.get("logprobs")
        if top is not None and not isinstance(top, bool):
            raise invalid("Invalid type for 'logprobs': expected a boolean.", "logprobs", "invalid_type")
        _int_in(body, "top_logprobs", 0, 20)
    else:
        _check_prompt(body.get("prompt"))
        _int_in(body, "logprobs", 0, 5)
    stream = bool(_bool(body, "stream"))
    max_tokens = _int_in(body, "max_tokens", 1, max_tokens_cap)
    max_completion = _int_in(body, "max_completion_tokens", 1, max_tokens_cap)
    n = _int_in(body, "n", 1, _MAX_N) or 1
    _number_in(body, "temperature", 0, 2)
    _number_in(body, "top_p", 0, 1)
    _number_in(body, "presence_penalty", -2, 2)
    _number_in(body, "frequency_penalty", -2, 2)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise invalid("Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type")
        if not stream:
            raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        include_usage = bool(options.get("include_usage"))
    return CompletionRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=include_usage,
        n=n,
        max_tokens=max_completion if max_completion is not None else max_tokens,
        prompt_tokens_estimate=estimate_prompt_tokens(body, endpoint == CHAT),
    )


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is larger than this API accepts ({limit} bytes).", "request_too_large")
