"""Partner intel as detection can use it: verified objects in, indicators with their reporters and disputes out.

Only objects that pass :func:`distillguard.intel.signing.verify` under a configured partner's key (or our own)
enter. An indicator is usable when its pattern is one distillguard reads (keyed identifiers under *our* group key,
template band signatures, network prefixes) and it is neither revoked nor expired. Around each indicator the feed
keeps who else vouched for it (sightings and agreeing opinions of other partners: independent reports) and who
disputed it (false-positive opinions, ThreatExchange style), which ``trust`` weighs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stix2.pattern_visitor import create_pattern_object

from distillguard.intel.export import IndicatorKind
from distillguard.intel.vocabulary import CAMPAIGN_EXT

log = logging.getLogger(__name__)

_KINDS: frozenset[str] = frozenset(
    ("account_id", "org_id", "payment_fingerprint", "email_domain", "client_fingerprint", "template", "ip_prefix")
)
DISPUTING = frozenset({"disagree", "strongly-disagree"})
AGREEING = frozenset({"agree", "strongly-agree"})


@dataclass(frozen=True)
class PartnerIndicator:
    id: str
    version: str
    creator: str
    kind: IndicatorKind
    values: frozenset[str]
    campaign: str
    name: str
    key_id: str | None
    # Templates only: keyed template ids that match exactly (``values`` are then the signature's bands).
    exact: frozenset[str] = frozenset()


@dataclass
class Feed:
    """The usable indicators, with the partners that vouched for or disputed each (identity ids)."""

    indicators: dict[str, PartnerIndicator] = field(default_factory=dict)
    vouched: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    disputed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def reporters(self, indicator_id: str) -> set[str]:
        """The identities that report an indicator: its creator and every partner that vouched for it."""
        ind = self.indicators[indicator_id]
        return {ind.creator} | self.vouched.get(indicator_id, set())


def _constants(node: Any) -> list[str]:
    value = node.value
    if isinstance(value, list):
        return [str(v.value) for v in value]
    return [str(value)]


def _comparisons(node: Any) -> Iterable[tuple[str, str, list[str]]]:
    """(object type, property, values) of every comparison in a parsed STIX pattern."""
    if hasattr(node, "lhs") and hasattr(node, "rhs"):
        path = node.lhs
        prop = ".".join(str(getattr(c, "property_name", "")) for c in path.property_path)
        yield str(path.object_type_name), prop, _constants(node.rhs)
        return
    # Boolean and observation expressions hold ``operands`` or an ``operand``; parentheses an ``expression``.
    for child in getattr(node, "operands", None) or [getattr(node, "operand", None), getattr(node, "expression", None)]:
        if child is not None:
            yield from _comparisons(child)


def parse_indicator(obj: dict[str, Any], group_key_id: str | None) -> PartnerIndicator:
    """The indicator's kind and values; raises ValueError for one distillguard cannot match on."""
    ext = (obj.get("extensions") or {}).get(CAMPAIGN_EXT.id) or {}
    kind = ext.get("indicator_kind")
    if kind not in _KINDS:
        raise ValueError(f"not a distillguard indicator kind: {kind!r}")
    if obj.get("pattern_type") != "stix":
        raise ValueError("pattern_type is not stix")
    comparisons = list(_comparisons(create_pattern_object(str(obj.get("pattern", "")), version="2.1")))
    values: set[str] = set()
    exact: set[str] = set()
    key_id = None
    for object_type, prop, found in comparisons:
        if prop == "key_id":
            key_id = found[0]
        elif (object_type, prop) == ("distillguard-template-signature", "exact"):
            exact.update(found)
        elif (object_type, prop) in (
            ("distillguard-keyed-identifier", "hmac"),
            ("distillguard-template-signature", "bands"),
            ("ipv4-addr", "value"),
            ("ipv6-addr", "value"),
        ):
            values.update(found)
    if kind != "ip_prefix" and key_id != group_key_id:
        raise ValueError(f"keyed under group key {key_id!r}, not ours ({group_key_id!r})")
    if not values:
        raise ValueError("the pattern names no values")
    return PartnerIndicator(
        id=str(obj["id"]),
        version=str(obj.get("modified") or obj.get("created") or ""),
        creator=str(obj.get("created_by_ref")),
        kind=kind,
        values=frozenset(values),
        campaign=str(ext.get("campaign", "")),
        name=str(obj.get("name", "")),
        key_id=key_id,
        exact=frozenset(exact),
    )


def build_feed(objects: Iterable[tuple[str, dict[str, Any]]], group_key_id: str | None, now: str) -> Feed:
    """The feed from verified ``(signer, object)`` pairs (each id at its latest version)."""
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for signer, obj in objects:
        version = str(obj.get("modified") or obj.get("created") or "")
        held = latest.get(obj["id"])
        if held is None or version >= str(held[1].get("modified") or held[1].get("created") or ""):
            latest[obj["id"]] = (signer, obj)
    feed = Feed()
    for _, obj in latest.values():
        if obj.get("type") != "indicator":
            continue
        if obj.get("revoked") or (obj.get("valid_until") and str(obj["valid_until"]) <= now):
            continue
        try:
            feed.indicators[obj["id"]] = parse_indicator(obj, group_key_id)
        except Exception as exc:  # a partner's malformed pattern must not stop the others
            feed.skipped.append((str(obj["id"]), str(exc)))
    for signer, obj in latest.values():
        if obj.get("type") == "sighting":
            target = obj.get("sighting_of_ref")
            if target in feed.indicators and signer != feed.indicators[target].creator:
                feed.vouched[target].add(signer)
        elif obj.get("type") == "opinion":
            for target in obj.get("object_refs") or []:
                if target not in feed.indicators or signer == feed.indicators[target].creator:
                    continue
                if obj.get("opinion") in DISPUTING:
                    feed.disputed[target][signer] = str(obj.get("explanation", ""))
                elif obj.get("opinion") in AGREEING:
                    feed.vouched[target].add(signer)
    return feed
