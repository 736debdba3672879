"""The per-request signal record: its fields, their column order, and its stored forms (row and JSON).

The record is part of the event schema: the gateway (and ``distillguard analyze`` for imported logs) computes it
once per event with ``distillguard.detect.signals.extract``, and the event log stores it in ``sig_*`` columns and
exported events carry it as a ``signals`` object. Readers reuse stored signals when their ``SIGNALS_VERSION`` is
the current one and recompute them otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# Bump when the record's fields change or when the extractor gives a different result for the same request (new
# or changed rules in detect/signals/rules, a new benchmark index): stored signals of other versions are recomputed.
SIGNALS_VERSION = 1

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
# The SQL type of each column in the event log (``sig_<name>``).
SIGNAL_SQL_TYPES: dict[str, str] = {
    f.name: {"str": "TEXT", "str | None": "TEXT", "float | None": "REAL"}.get(str(f.type), "INTEGER")
    for f in fields(RequestSignals)
}

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


def from_row(row: tuple[Any, ...]) -> RequestSignals:
    """The inverse of ``as_row``: a stored row (``SIGNAL_COLUMNS`` order) back to the record."""
    values = dict(zip(SIGNAL_COLUMNS, row, strict=True))
    values["logprob_harvest"] = bool(values["logprob_harvest"])
    values["tools"] = bool(values["tools"])
    values["content_sig"] = to_unsigned64(values["content_sig"])
    return RequestSignals(**values)


def to_object(signals: RequestSignals) -> dict[str, Any]:
    """The ``signals`` object of an exported event: the version and every field (``content_sig`` unsigned)."""
    obj: dict[str, Any] = {"version": SIGNALS_VERSION}
    obj.update(zip(SIGNAL_COLUMNS, as_row(signals), strict=True))
    obj["content_sig"] = signals.content_sig
    return obj


def from_object(obj: Any) -> RequestSignals | None:
    """The record of an exported ``signals`` object, or None when it is absent, of another version or malformed
    (the caller then recomputes the signals from the request)."""
    if not isinstance(obj, dict) or obj.get("version") != SIGNALS_VERSION:
        return None
    try:
        values = {name: obj[name] for name in SIGNAL_COLUMNS}
        record = RequestSignals(**values)
    except (KeyError, TypeError):
        return None
    return record if _well_typed(record) else None


def _well_typed(s: RequestSignals) -> bool:
    def opt(value: Any, kind: type | tuple[type, ...]) -> bool:
        return value is None or (isinstance(value, kind) and not isinstance(value, bool))

    return (
        all(opt(v, str) for v in (s.cot, s.training_data, s.rubric, s.system_prompt_hash, s.benchmark))
        and all(isinstance(v, str) for v in (s.template_id, s.domain, s.language))
        and isinstance(s.logprob_harvest, bool)
        and isinstance(s.tools, bool)
        and isinstance(s.content_sig, int)
        and 0 <= s.content_sig < _TWO_64
        and all(isinstance(v, int) and not isinstance(v, bool) for v in (s.depth, s.user_turns, s.prompt_chars, s.n))
        and all(opt(v, int) for v in (s.max_tokens, s.top_logprobs))
        and opt(s.temperature, (int, float))
    )
