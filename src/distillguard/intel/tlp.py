"""TLP 2.0 markings: the OASIS marking-definition objects (``stix2`` ships only TLP 1.0's).

The five objects are the ones OASIS publishes in cti-stix-common-objects (extension-definition-specifications/
tlp-2.0): fixed ids, created 2022-10-01, a ``tlp_2_0`` property extension. Every member must use these exact ids so
that a consumer recognises the level of an object by its ``object_marking_refs``.
"""

from __future__ import annotations

from typing import Any, Literal

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]
# From least to most restricted.
LEVELS: tuple[Tlp, ...] = ("clear", "green", "amber", "amber+strict", "red")
_IDS: dict[Tlp, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
BY_ID: dict[str, Tlp] = {v: k for k, v in _IDS.items()}


def marking_id(level: Tlp) -> str:
    return _IDS[level]


def marking_definition(level: Tlp) -> dict[str, Any]:
    """The OASIS marking-definition object of one TLP 2.0 level."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": _IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def at_least(level: Tlp, floor: Tlp) -> bool:
    """True when ``level`` is as restricted as ``floor`` or more."""
    return LEVELS.index(level) >= LEVELS.index(floor)


def level_of(marking_refs: list[str] | None) -> Tlp | None:
    """The most restrictive TLP 2.0 level among an object's markings (None when it carries none)."""
    found = [BY_ID[ref] for ref in marking_refs or () if ref in BY_ID]
    return max(found, key=LEVELS.index) if found else None
