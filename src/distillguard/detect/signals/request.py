"""Reading an OpenAI request body defensively: the texts and parameters the detectors need.

Bodies arrive as received, so nothing about their shape is trusted: every field may be missing, of the wrong
type, or huge. Chat bodies (``messages``) and text-completion bodies (``prompt``) are both read; which one is
decided by the body's shape, the endpoint only breaks a tie.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SYSTEM_ROLES = frozenset(("system", "developer"))
_TOOL_ROLES = frozenset(("tool", "function", "ipython"))


@dataclass(slots=True)
class RequestView:
    """What the detectors read from one request body."""

    # The last user message (chat) or the first prompt (completions); "" when there is none.
    text: str = ""
    # The system/developer messages joined by newlines; "" when there are none.
    system: str = ""
    depth: int = 0
    user_turns: int = 0
    prompt_chars: int = 0
    # Tools or functions offered in the request.
    tools: bool = False
    # The conversation carries tool calls or tool results.
    tool_messages: bool = False
    max_tokens: int | None = None
    n: int = 1
    temperature: float | None = None
    top_logprobs: int | None = None
    completions: bool = False


def content_text(content: object) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def _int(value: object) -> int | None:
    # bool is an int subclass in Python; JSON true is not a token count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value) if isinstance(value, float) or abs(value) < 1 << 53 else None
    return result if result is not None and math.isfinite(result) else None


def _read_chat(body: Mapping[str, Any], messages: list[Any], view: RequestView) -> None:
    system_parts: list[str] = []
    last_user: object = None
    chars = 0
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        content = message.get("content")
        text = content if isinstance(content, str) else content_text(content)
        chars += len(text)
        if role in _SYSTEM_ROLES:
            system_parts.append(text)
            continue
        view.depth += 1
        if role == "user":
            view.user_turns += 1
            last_user = text
        elif role in _TOOL_ROLES or message.get("tool_calls") or message.get("function_call"):
            view.tool_messages = True
    view.text = last_user if isinstance(last_user, str) else ""
    view.system = "\n".join(p for p in system_parts if p)
    view.prompt_chars = chars
    tools = body.get("tools")
    functions = body.get("functions")
    view.tools = (isinstance(tools, list) and bool(tools)) or (isinstance(functions, list) and bool(functions))
    top = _int(body.get("top_logprobs"))
    if top is None and body.get("logprobs") is True:
        top = 0  # logprobs of the sampled tokens only
    view.top_logprobs = top


def _read_completion(body: Mapping[str, Any], prompt: object, view: RequestView) -> None:
    view.completions = True
    texts: list[str] = []
    if isinstance(prompt, str):
        texts = [prompt]
    elif isinstance(prompt, list):
        # A list of strings is a batch of prompts; lists of token ids carry no text to analyse.
        texts = [p for p in prompt if isinstance(p, str)]
    view.text = texts[0] if texts else ""
    view.prompt_chars = sum(map(len, texts))
    view.depth = view.user_turns = 1 if prompt is not None else 0
    # Completions take an integer logprobs (top-N per position); a bool here would be a chat-style mistake.
    view.top_logprobs = _int(body.get("logprobs"))


def read_request(request: object, endpoint: str = "/v1/chat/completions") -> RequestView:
    """The detectors' view of a request body; never raises on odd input."""
    view = RequestView()
    if not isinstance(request, Mapping):
        return view
    messages = request.get("messages")
    prompt = request.get("prompt")
    if isinstance(messages, list) and (prompt is None or "chat" in endpoint):
        _read_chat(request, messages, view)
    elif prompt is not None:
        _read_completion(request, prompt, view)
    max_tokens = _int(request.get("max_completion_tokens"))
    view.max_tokens = max_tokens if max_tokens is not None else _int(request.get("max_tokens"))
    n = _int(request.get("n"))
    view.n = n if n is not None and n >= 1 else 1
    view.temperature = _float(request.get("temperature"))
    return view
