"""The OASIS STIX validator on what we export: a bundle that fails it never leaves."""

from __future__ import annotations

from typing import Any

from stix2validator import ValidationOptions, validate_parsed_json

# Warnings the validator gives on valid content: 103 asks for UUIDv4 ids, but the spec requires UUIDv5 for SCOs and
# it cannot tell that our extension-defined observables are SCOs.
_OPTIONS = ValidationOptions(version="2.1", disabled=["103"])


def validation_errors(bundle: dict[str, Any]) -> list[str]:
    """Errors of a STIX 2.1 bundle (empty when valid); each message names the object."""
    result = validate_parsed_json(bundle, _OPTIONS)
    results = result if isinstance(result, list) else [result]
    return [str(e.message) for r in results for e in r.errors]


def validation_warnings(bundle: dict[str, Any]) -> list[str]:
    result = validate_parsed_json(bundle, _OPTIONS)
    results = result if isinstance(result, list) else [result]
    return [str(w) for r in results for w in r.warnings or []]
