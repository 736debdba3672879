"""An account's online state as bytes, for state shared between processes (detect/shared_state.py).

Two parts: the scalars, counters and small sets as JSON (orjson; counters keep their insertion order, which
``most_common`` ties and the domain entropy's summation order depend on), and the two large sets (content
signatures, active clock hours) packed as 64-bit integers. Both are bounded by the state's caps
(:data:`~distillguard.detect.features.CONTENT_CAP`, :data:`~distillguard.detect.features.ACTIVE_HOURS_CAP`...),
so one account's encoded state stays under about 110 KB however much it sends; a typical one is 1 to 5 KB.

Decoding rebuilds exactly the state that was encoded: ``decode(*encode(s)) == s``.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import orjson

from distillguard.detect.features import AccountState

# Bumped when the layout changes: a state of another version is not decoded (the account starts afresh).
CODEC_VERSION = 1

_SCALARS = (
    "created_us",
    "verified",
    "events",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "first_us",
    "last_us",
    "gap_n",
    "gap_mean",
    "gap_m2",
    "minute",
    "minute_count",
    "busy_minutes",
    "minutes",
    "repeats",
    "with_system",
    "single_turn",
    "cot",
    "training_data",
    "rubric",
    "logprob_harvest",
    "benchmark",
    "tools",
    "long_max_tokens",
    "temperature_zero",
    "rate_limited",
    "pivot_model",
    "pivot_at_events",
)
_COUNTERS = ("templates", "domains", "model_events")
_SETS = ("languages", "system_prompts")


class StateCodecError(ValueError):
    """Bytes that are not an encoded account state of this version."""


def encode(state: AccountState) -> tuple[bytes, bytes]:
    """``state`` as (JSON part, packed part)."""
    doc: dict[str, Any] = {"_v": CODEC_VERSION, "hours": state.hours}
    for name in _SCALARS:
        doc[name] = getattr(state, name)
    for name in _COUNTERS:
        doc[name] = dict(getattr(state, name))
    for name in _SETS:
        doc[name] = sorted(getattr(state, name))
    doc["n_contents"] = len(state.contents)
    # Content signatures are unsigned 64-bit, clock hours signed: one array of each, concatenated.
    packed = array("Q", state.contents).tobytes() + array("q", state.active_hours).tobytes()
    return orjson.dumps(doc), packed


def decode(doc_bytes: bytes, packed: bytes) -> AccountState:
    """The state :func:`encode` was given; :class:`StateCodecError` for anything else."""
    try:
        doc = orjson.loads(doc_bytes)
        if not isinstance(doc, dict) or doc.get("_v") != CODEC_VERSION:
            raise StateCodecError(f"not an account state of codec version {CODEC_VERSION}")
        n_contents = int(doc["n_contents"])
        contents = array("Q")
        contents.frombytes(packed[: n_contents * 8])
        hours = array("q")
        hours.frombytes(packed[n_contents * 8 :])
        state = AccountState(hours=[int(h) for h in doc["hours"]], active_hours=set(hours), contents=set(contents))
        for name in _COUNTERS:
            setattr(state, name, Counter(doc[name]))
        for name in _SETS:
            setattr(state, name, set(doc[name]))
        for name in _SCALARS:
            setattr(state, name, doc[name])
    except StateCodecError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise StateCodecError(f"not a decodable account state: {exc}") from exc
    if len(state.hours) != 24 or len(contents) != n_contents:
        raise StateCodecError("truncated account state")
    return state
