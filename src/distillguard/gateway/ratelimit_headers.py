"""OpenAI's rate-limit headers: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, ``retry-after(-ms)``."""

from __future__ import annotations

import math

from distillguard.limits.limiter import Decision, WindowState


def format_reset(seconds: float) -> str:
    """Durations as OpenAI writes them: ``20ms``, ``1s``, ``7.66s``, ``6m0s``, ``1h2m3s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        text = f"{seconds:.3g}" if seconds < 10 else f"{seconds:.1f}".rstrip("0").rstrip(".")
        return f"{text}s"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


def _window_headers(kind: str, state: WindowState | None, headers: dict[str, str]) -> None:
    if state is None:
        return
    headers[f"x-ratelimit-limit-{kind}"] = str(state.rule.item.amount)
    headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
    headers[f"x-ratelimit-reset-{kind}"] = format_reset(state.reset_s)


def window_headers(requests: WindowState | None, tokens: WindowState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    _window_headers("requests", requests, headers)
    _window_headers("tokens", tokens, headers)
    return headers


def decision_headers(decision: Decision) -> dict[str, str]:
    headers = window_headers(decision.requests, decision.tokens)
    if decision.retry_after_s is not None:
        headers["retry-after"] = str(max(1, math.ceil(decision.retry_after_s)))
        headers["retry-after-ms"] = str(max(1, math.ceil(decision.retry_after_s * 1000)))
    return headers
