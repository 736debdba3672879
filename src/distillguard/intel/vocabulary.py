"""distillguard's STIX vocabulary: the extension definitions and custom observables its bundles use.

STIX 2.1 adds content through extension-definition objects (section 7.3), not free-form ``x_`` properties:

- ``distillguard-keyed-identifier`` (new SCO): an identifier as a keyed HMAC (``kind``, ``hmac``, ``key_id``);
- ``distillguard-template-signature`` (new SCO): a prompt template as keyed MinHash/LSH bands (``scheme``,
  ``bands``, ``key_id``);
- the *campaign* property extension on groupings and indicators: aggregate counts, time span, targeted
  capabilities, models, the verdict and the kinds of linking evidence (all in the clear, nothing per account);
- the *signature* property extension on every object a member creates: its Ed25519 signature (intel/signing.py).

The definitions have fixed ids and timestamps, published by the project identity below, so that every deployment
emits byte-identical definitions and a consumer can recognise them. docs/intel.md documents each property.
"""

from __future__ import annotations

from typing import Any

import orjson
from stix2 import properties
from stix2.v21 import CustomObservable, ExtensionDefinition, Identity

SCHEMA_BASE = "https://github.com/distillguard/distillguard/blob/main/docs/intel.md"
_PUBLISHED = "2026-11-25T00:00:00.000Z"

PROJECT_IDENTITY = Identity(
    id="identity--ed5d4f83-ef8e-4e9b-91b9-2834e2b73692",
    created=_PUBLISHED,
    modified=_PUBLISHED,
    name="distillguard project",
    description="Publisher of the distillguard STIX extension definitions.",
    identity_class="organization",
)


def _definition(uuid: str, name: str, kind: str, description: str) -> ExtensionDefinition:
    return ExtensionDefinition(
        id=f"extension-definition--{uuid}",
        created=_PUBLISHED,
        modified=_PUBLISHED,
        created_by_ref=PROJECT_IDENTITY.id,
        name=name,
        description=description,
        schema=f"{SCHEMA_BASE}#{name}",
        version="1.0.0",
        extension_types=[kind],
    )


KEYED_IDENTIFIER_EXT = _definition(
    "cae44ae1-dbfc-4992-ab9d-bc853355ef3e",
    "distillguard-keyed-identifier",
    "new-sco",
    "An identifier (account, org, payment fingerprint, e-mail domain, client fingerprint) as HMAC-SHA256 under the "
    "sharing group's key.",
)
TEMPLATE_SIGNATURE_EXT = _definition(
    "5538732e-29b3-4aa3-9fdd-7a4a554504e4",
    "distillguard-template-signature",
    "new-sco",
    "A prompt template as keyed MinHash/LSH band signatures: near-duplicate templates match, the text does not leave.",
)
CAMPAIGN_EXT = _definition(
    "88a507f3-82ee-40de-acc8-6ff30d7bea5a",
    "distillguard-campaign",
    "property-extension",
    "Aggregate facts about a distillation campaign: accounts, calls, tokens, time span, targeted capabilities, "
    "models, verdict and the kinds of evidence that linked its accounts.",
)
SIGNATURE_EXT = _definition(
    "1cc6ed54-fda3-4433-960b-71e773c3d2e7",
    "distillguard-signature",
    "property-extension",
    "An Ed25519 signature by the creating member over the object's canonical JSON without this extension.",
)
DEFINITIONS = (KEYED_IDENTIFIER_EXT, TEMPLATE_SIGNATURE_EXT, CAMPAIGN_EXT, SIGNATURE_EXT)
DEFINITION_IDS = frozenset(d.id for d in DEFINITIONS) | {PROJECT_IDENTITY.id}


@CustomObservable(
    "distillguard-keyed-identifier",
    [
        ("kind", properties.StringProperty(required=True)),
        ("hmac", properties.StringProperty(required=True)),
        ("key_id", properties.StringProperty(required=True)),
    ],
    id_contrib_props=["kind", "hmac", "key_id"],
    extension_name=KEYED_IDENTIFIER_EXT.id,
)
class KeyedIdentifier:
    """A keyed identifier observed in the campaign (its id is a UUIDv5 of its values, the same at every member)."""


@CustomObservable(
    "distillguard-template-signature",
    [
        ("scheme", properties.StringProperty(required=True)),
        ("bands", properties.ListProperty(properties.StringProperty, required=True)),
        ("key_id", properties.StringProperty(required=True)),
        ("exact", properties.StringProperty()),
    ],
    id_contrib_props=["scheme", "bands", "key_id"],
    extension_name=TEMPLATE_SIGNATURE_EXT.id,
)
class TemplateSignatureObservable:
    """A prompt template the campaign sent, as band signatures (intel/templates.py)."""


def definitions_json() -> list[dict[str, Any]]:
    """The project identity and the extension definitions, as JSON objects for a bundle."""
    return [orjson.loads(o.serialize()) for o in (PROJECT_IDENTITY, *DEFINITIONS)]
