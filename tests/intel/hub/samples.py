"""Valid STIX 2.1 objects built with the OASIS ``stix2`` library, as the JSON a member would post."""

from __future__ import annotations

import json
from typing import Any

import stix2

Obj = dict[str, Any]


def as_json(*objects: Any) -> list[Obj]:
    return [json.loads(o.serialize()) for o in objects]


def indicator(n: int, **extra: Any) -> Any:
    return stix2.Indicator(
        name=f"distillation campaign template {n}",
        pattern=f"[x-distillguard-template:value = 'tpl-{n}']",
        pattern_type="stix",
        valid_from="2026-01-01T00:00:00Z",
        **extra,
    )


def indicators(count: int, start: int = 0) -> list[Obj]:
    return as_json(*(indicator(n) for n in range(start, start + count)))


def campaign_report() -> list[Obj]:
    """An identity, indicators, a campaign, relationships, a sighting and a grouping of them: what a member shares."""
    provider = stix2.Identity(name="Acme AI", identity_class="organization")
    first, second = indicator(1, created_by_ref=provider.id), indicator(2, created_by_ref=provider.id)
    campaign = stix2.Campaign(name="hydra-7", created_by_ref=provider.id)
    links = [stix2.Relationship(i, "indicates", campaign, created_by_ref=provider.id) for i in (first, second)]
    sighting = stix2.Sighting(first, count=40, where_sighted_refs=[provider.id], created_by_ref=provider.id)
    address = stix2.IPv4Address(value="203.0.113.7")
    grouping = stix2.Grouping(
        context="suspicious-activity",
        object_refs=[first.id, second.id, campaign.id, address.id],
        created_by_ref=provider.id,
    )
    return as_json(provider, first, second, campaign, *links, sighting, address, grouping)
