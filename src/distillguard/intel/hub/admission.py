"""Which posted objects the hub takes: STIX 2.1 objects that pass the OASIS validator, and nothing else.

Every object is checked with ``stix2validator`` (about 1 to 3 ms each on this machine) so that everything the hub
serves passes it too; members must be able to trust the shape of what they pull even when they cannot trust its
content. Warnings (best practices) are not refusals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from stix2validator import ValidationOptions, validate_instance

from distillguard.intel.hub.stamps import parse_stamp

_OPTIONS = ValidationOptions(version="2.1")
MAX_ID = 250


@dataclass(frozen=True, slots=True)
class Incoming:
    """An admitted object, ready to store: its TAXII coordinates and its JSON."""

    object_id: str
    type: str
    spec_version: str
    # The object's own version (``modified``, else ``created``); None for unversioned objects such as most
    # cyber-observables, whose version is then their date_added.
    version: str | None
    version_us: int | None
    body: str


@dataclass(frozen=True, slots=True)
class Refusal:
    object_id: str
    version: str
    message: str


def _version(obj: dict[str, Any]) -> str | None:
    for name in ("modified", "created"):
        if isinstance(obj.get(name), str):
            return str(obj[name])
    return None


def _structure(obj: dict[str, Any]) -> str | None:
    """Why ``obj`` is not a STIX 2.1 object the hub can key, or None."""
    kind, object_id = obj.get("type"), obj.get("id")
    if not isinstance(kind, str) or not kind:
        return "no `type`"
    if not isinstance(object_id, str) or not object_id.startswith(f"{kind}--") or len(object_id) > MAX_ID:
        return "no `id` of the form <type>--<uuid>"
    if obj.get("spec_version") != "2.1":
        return f'`spec_version` must be "2.1", got {obj.get("spec_version")!r}'
    return None


def admit(obj: Any) -> Incoming | Refusal:
    """The object as the hub stores it, or why it is refused."""
    if not isinstance(obj, dict):
        return Refusal("", "", "not a JSON object")
    object_id = obj.get("id") if isinstance(obj.get("id"), str) else ""
    version = _version(obj) or ""
    problem = _structure(obj)
    if problem is not None:
        return Refusal(str(object_id)[:MAX_ID], version, problem)
    result = validate_instance(obj, _OPTIONS)
    if not result.is_valid:
        return Refusal(str(object_id), version, "; ".join(str(e) for e in result.errors)[:2000])
    try:
        version_us = parse_stamp(version) if version else None
    except ValueError as exc:
        return Refusal(str(object_id), version, str(exc))
    # Stored as parsed and re-encoded: the same JSON value (signatures over canonical JSON still verify).
    body = orjson.dumps(obj).decode()
    return Incoming(str(object_id), str(obj["type"]), "2.1", version or None, version_us, body)
