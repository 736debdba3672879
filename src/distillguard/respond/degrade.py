"""Degraded service for accounts flagged for distillation: less of what makes a response worth distilling.

A distiller wants long answers, many samples per prompt, the teacher's reasoning traces and its log-probabilities.
Rather than refusing a flagged account outright (which tells it exactly when it was caught, and hurts most if the
flag is wrong), the gateway can answer it with slightly degraded responses, as hosted providers do:

* requests: log-probability parameters are dropped (or refused with a 400), ``max_tokens`` and ``n`` are capped
  (:func:`degrade_request`);
* responses: reasoning traces (``reasoning_content`` / ``reasoning`` of messages and stream deltas) are dropped or
  cut to a short summary, and log-probabilities the upstream sent anyway are removed (:class:`ResponseDegrader`).

Pure functions on parsed bodies; the gateway calls them only for flagged accounts, and records the returned change
vocabulary (``logprobs_dropped``, ``max_tokens_capped:<cap>``, ``n_capped:<cap>``, ``reasoning_dropped``,
``reasoning_summarised``, ``logprobs_removed``) in the event log.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from distillguard.config import DegradeConfig

# The endpoints, as in distillguard.gateway.validation (not imported from there: the gateway package imports this one).
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"

SUMMARY_MARK = " […]"
# Reasoning fields of a chat message or stream delta: DeepSeek/vLLM (reasoning_content), vLLM >= 0.10 and OpenRouter
# (reasoning, a string); OpenRouter's structured reasoning_details is never a string, so it is never summarised.
_REASONING_KEYS = ("reasoning_content", "reasoning", "reasoning_details")
# Request parameters asking for log-probabilities; prompt_logprobs is vLLM's extension.
_LOGPROB_PARAMS = ("logprobs", "top_logprobs", "prompt_logprobs")


class DegradeRefused(Exception):
    """The request asks for something the degrade policy refuses (logprobs with logprobs="refuse")."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _asks(value: Any) -> bool:
    # Legacy completions' logprobs=0 asks for the sampled token's log-probability; false and null do not ask.
    return value is not None and value is not False


def _positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def degrade_request(body: dict[str, Any], endpoint: str, config: DegradeConfig) -> tuple[dict[str, Any], list[str]]:
    """A degraded copy of a completion request body (the input is not changed) and the changes applied.

    Raises :class:`DegradeRefused` when the request asks for log-probabilities and ``config.logprobs`` is "refuse".
    Values of the wrong type are left alone: validation rejects them elsewhere.
    """
    if endpoint == CHAT:
        chat = True
    elif endpoint == COMPLETIONS:
        chat = False
    else:
        raise ValueError(f"not a completion endpoint: {endpoint!r}")
    out = dict(body)
    changes: list[str] = []

    if config.logprobs != "keep":
        asked = [key for key in _LOGPROB_PARAMS if _asks(body.get(key))]
        if asked:
            if config.logprobs == "refuse":
                raise DegradeRefused(
                    "Log probabilities are not available for this account: they have been restricted on it.",
                    asked[0],
                )
            for key in _LOGPROB_PARAMS:
                out.pop(key, None)
            changes.append("logprobs_dropped")

    cap = config.max_tokens_cap
    if cap is not None:
        keys = ("max_tokens", "max_completion_tokens") if chat else ("max_tokens",)
        lowered = False
        present = False
        for key in keys:
            value = body.get(key)
            if value is None:
                continue  # absent, or null (the upstream's default): both mean "no limit"
            present = True
            if _positive_int(value) and value > cap:
                out[key] = cap
                lowered = True
        if not present:
            out["max_tokens"] = cap
            lowered = True
        if lowered:
            changes.append(f"max_tokens_capped:{cap}")

    n_cap = config.n_cap
    if n_cap is not None:
        lowered = False
        for key in ("n",) if chat else ("n", "best_of"):
            value = body.get(key)
            if _positive_int(value) and value > n_cap:
                out[key] = n_cap
                lowered = True
        if lowered:
            changes.append(f"n_capped:{n_cap}")

    return out, changes


class ResponseDegrader:
    """Degrades one upstream response, whole or chunk by chunk; ``applied`` lists what it changed."""

    __slots__ = ("_chat", "_mode", "_removed", "_strip_logprobs", "_summary_chars", "_used", "applied")

    def __init__(self, config: DegradeConfig, chat: bool) -> None:
        self._chat = chat
        self._mode = config.reasoning
        self._summary_chars = config.summary_chars
        self._strip_logprobs = config.logprobs != "keep"
        # Reasoning characters passed so far in a stream, per (choice index, field).
        self._used: dict[tuple[Any, str], int] = {}
        self._removed = 0
        self.applied: list[str] = []

    @property
    def reasoning_chars_removed(self) -> int:
        """Characters of reasoning text removed so far (the " […]" marks not counted; structured traces neither)."""
        return self._removed

    def _note(self, change: str) -> None:
        if change not in self.applied:
            self.applied.append(change)

    def whole(self, body: bytes) -> bytes:
        """A non-streamed completion response, degraded; the same bytes object when nothing changed."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(payload, dict):
            return body
        choices = payload.get("choices")
        if not isinstance(choices, list):
            return body
        changed = False
        if self._strip_logprobs and payload.get("prompt_logprobs") is not None:
            payload["prompt_logprobs"] = None
            self._note("logprobs_removed")
            changed = True
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if self._strip_logprobs and self._choice_logprobs(choice):
                changed = True
            if self._chat and self._mode != "keep":
                message = choice.get("message")
                if isinstance(message, dict) and self._whole_reasoning(message):
                    changed = True
        return orjson.dumps(payload) if changed else body

    def _whole_reasoning(self, message: dict[str, Any]) -> bool:
        changed = False
        for key in _REASONING_KEYS:
            value = message.get(key)
            if value is None:
                continue
            if self._mode == "summarise" and isinstance(value, str):
                if len(value) > self._summary_chars:
                    message[key] = value[: self._summary_chars] + SUMMARY_MARK
                    self._removed += len(value) - self._summary_chars
                    self._note("reasoning_summarised")
                    changed = True
                continue
            del message[key]
            if isinstance(value, str):
                self._removed += len(value)
            self._note("reasoning_dropped")
            changed = True
        return changed

    def _choice_logprobs(self, choice: dict[str, Any]) -> bool:
        changed = False
        for key in ("logprobs", "prompt_logprobs"):
            if choice.get(key) is not None:
                choice[key] = None
                changed = True
        if changed:
            self._note("logprobs_removed")
        return changed

    def chunk(self, payload: dict[str, Any]) -> bool:
        """One parsed stream chunk, degraded in place; True when it changed (and needs serialising again)."""
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list):
            return False
        changed = False
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if self._strip_logprobs and self._choice_logprobs(choice):
                changed = True
            if self._chat and self._mode != "keep":
                delta = choice.get("delta")
                if isinstance(delta, dict) and self._delta_reasoning(choice, delta):
                    changed = True
        return changed

    def _delta_reasoning(self, choice: dict[str, Any], delta: dict[str, Any]) -> bool:
        changed = False
        for key in _REASONING_KEYS:
            value = delta.get(key)
            if value is None:
                continue
            if self._mode == "summarise" and isinstance(value, str):
                if self._summarise_delta(choice, delta, key, value):
                    changed = True
                continue
            del delta[key]
            if isinstance(value, str):
                self._removed += len(value)
            self._note("reasoning_dropped")
            changed = True
        return changed

    def _summarise_delta(self, choice: dict[str, Any], delta: dict[str, Any], key: str, value: str) -> bool:
        index = choice.get("index", 0)
        if not isinstance(index, int):
            index = 0
        slot = (index, key)
        used = self._used.get(slot, 0)
        limit = self._summary_chars
        if used > limit:  # the mark has been sent: the rest of this trace goes
            del delta[key]
            self._removed += len(value)
            self._note("reasoning_summarised")
            return True
        total = used + len(value)
        if total <= limit:
            self._used[slot] = total
            return False
        keep = limit - used
        delta[key] = value[:keep] + SUMMARY_MARK
        self._removed += len(value) - keep
        self._used[slot] = limit + 1
        self._note("reasoning_summarised")
        return True
