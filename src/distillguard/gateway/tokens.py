"""Prompt size estimate used to reserve tokens before the upstream reports exact usage.

No tokenizer is loaded (tokenizers download vocabularies, and the upstream's model is unknown to us): about four
bytes of UTF-8 text per token, as OpenAI's guidance for English, plus a few tokens of framing per message.
Under-estimates are settled against the upstream's ``usage`` after the call, so they never leak capacity for long.
"""

from __future__ import annotations

from typing import Any

BYTES_PER_TOKEN = 4
PER_MESSAGE = 4


def _text_size(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text)
                elif part.get("type") in ("image_url", "input_image"):
                    total += 85 * BYTES_PER_TOKEN  # a low-detail image costs about 85 tokens
            elif isinstance(part, str):
                total += len(part)
            elif isinstance(part, int):
                total += BYTES_PER_TOKEN
        return total
    return 0


def estimate_prompt_tokens(body: dict[str, Any], chat: bool) -> int:
    if chat:
        messages = body.get("messages") or []
        chars = sum(_text_size(m.get("content")) for m in messages if isinstance(m, dict))
        framing = PER_MESSAGE * len(messages) + 3
    else:
        prompt = body.get("prompt")
        chars = _text_size(prompt if isinstance(prompt, list) else [prompt] if isinstance(prompt, str) else [])
        framing = 1
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += sum(len(str(t)) for t in tools)
    return chars // BYTES_PER_TOKEN + framing
