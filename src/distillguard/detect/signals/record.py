"""The per-request signal record: its fields, their column order, and the row form used for storage."""

from __future__ import annotations

from dataclasses import dataclass, fields

# The capabilities a prompt can target. "general" is the fallback and stays last; new names go before it.
DOMAINS = ("code", "math", "science", "agentic", "writing", "business", "general")


@dataclass(frozen=True, slots=True)
class RequestSignals:
    """Features computed once per event from its request body (see ``extract``).

    Strings that identify a detector rule (``cot``, ``training_data``, ``rubric``) are rule ids from the rule files
    under ``rules/``; they are None when no rule matched. Hashes are stable across processes and versions of Python
    (keyed BLAKE2b and CRC-32 based, never the salted built-in ``hash``), so they can be stored and compared later.
    """

    cot: str | None
    training_data: str | None
    rubric: str | None
    logprob_harvest: bool
    template_id: str
    content_sig: int
    system_prompt_hash: str | None
    domain: str
    language: str
    depth: int
    user_turns: int
    prompt_chars: int
    max_tokens: int | None
    n: int
    temperature: float | None
    top_logprobs: int | None
    benchmark: str | None
    tools: bool


SIGNAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RequestSignals))

SignalValue = str | int | float | bool | None

_TWO_63 = 1 << 63
_TWO_64 = 1 << 64


def to_signed64(value: int) -> int:
    """An unsigned 64-bit value as the signed int64 with the same bits (what ``as_row`` stores for content_sig)."""
    return value - _TWO_64 if value >= _TWO_63 else value


def to_unsigned64(value: int) -> int:
    """The inverse of ``to_signed64``: a stored int64 column back to the unsigned SimHash."""
    return value + _TWO_64 if value < 0 else value


def as_row(signals: RequestSignals) -> tuple[SignalValue, ...]:
    """The values of ``signals`` in ``SIGNAL_COLUMNS`` order, ready for an INTEGER/TEXT/REAL row.

    ``content_sig`` is stored as a *signed* int64 (two's complement of the unsigned SimHash) so that it fits the
    64-bit signed INTEGER of SQLite, DuckDB and Parquet; ``to_unsigned64`` gives the SimHash back. Hamming distance
    is the same either way once both sides are converted (``(a ^ b) & (2**64 - 1)``).
    """
    s = signals
    return (
        s.cot,
        s.training_data,
        s.rubric,
        s.logprob_harvest,
        s.template_id,
        to_signed64(s.content_sig),
        s.system_prompt_hash,
        s.domain,
        s.language,
        s.depth,
        s.user_turns,
        s.prompt_chars,
        s.max_tokens,
        s.n,
        s.temperature,
        s.top_logprobs,
        s.benchmark,
        s.tools,
    )
