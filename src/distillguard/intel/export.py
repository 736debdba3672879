"""A campaign as a STIX 2.1 bundle that partners can match without learning who or what it was.

Per campaign: the member's ``identity``; a ``grouping`` (context ``suspicious-activity``) carrying the campaign's
aggregate facts; one ``indicator`` per kind of evidence (keyed account/org/payment/e-mail-domain/client
identifiers, each shared template's band signature, network prefixes); an ``observed-data`` with the observables
behind them; a ``sighting`` of each indicator by this member with its counts; TLP 2.0 markings on everything; and,
only when the policy and the TLP level allow, a ``note`` with raw example prompts. Every object this member creates
is signed (intel/signing.py). Ids are UUIDv5 of (member, campaign, part), so exporting a campaign again yields new
versions of the same objects (a later ``modified``), which TAXII keeps as versions rather than duplicates.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from stix2.v21 import IPv4Address, IPv6Address

from distillguard.config import Settings
from distillguard.intel.facts import CampaignFacts, Outsiders
from distillguard.intel.member import Member
from distillguard.intel.privacy import IdentifierKind, normalise
from distillguard.intel.templates import SCHEME, TemplateSigner
from distillguard.intel.tlp import Tlp, at_least, marking_definition, marking_id
from distillguard.intel.vocabulary import (
    CAMPAIGN_EXT,
    KeyedIdentifier,
    TemplateSignatureObservable,
    definitions_json,
)
from distillguard.timefmt import from_epoch_us, rfc3339_ms

IndicatorKind = Literal[
    "account_id", "org_id", "payment_fingerprint", "email_domain", "client_fingerprint", "template", "ip_prefix"
]
# A prompt sent fewer times than this is content, not a template.
MIN_TEMPLATE_CALLS = 3
OBJECT_NAMESPACE = uuid.UUID("4f1d2a8e-7b3c-4e59-8a61-2c9d0e5f7b44")
KIND_LABELS: dict[str, str] = {
    "account_id": "account ids",
    "org_id": "organisation ids",
    "payment_fingerprint": "payment fingerprints",
    "email_domain": "sign-up e-mail domains",
    "client_fingerprint": "client fingerprints (header order, TLS)",
    "template": "prompt template",
    "ip_prefix": "network prefixes",
}


@dataclass(frozen=True)
class ExportPolicy:
    tlp: Tlp = "amber"
    raw_examples: bool = False
    raw_examples_min_tlp: Tlp = "amber+strict"
    templates_per_campaign: int = 20

    @property
    def examples_allowed(self) -> bool:
        return self.raw_examples and at_least(self.tlp, self.raw_examples_min_tlp)


def _observable(cls: Any, **props: Any) -> dict[str, Any]:
    """A custom observable as JSON (the classes' properties are declared to stix2, not to the type checker)."""
    return _json(cls(**props))


def _json(obj: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(obj.serialize())
    return loaded


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


class CampaignExporter:
    def __init__(self, member: Member, policy: ExportPolicy, now: datetime) -> None:
        self.member = member
        self.policy = policy
        self.key = member.group_key()
        self.templates = TemplateSigner(self.key)
        self.now = rfc3339_ms(now)
        self.marking = marking_id(policy.tlp)

    def _id(self, kind: str, cluster_id: str, part: str) -> str:
        return f"{kind}--{uuid.uuid5(OBJECT_NAMESPACE, f'{self.member.identity_id}|{cluster_id}|{part}')}"

    def _sdo(self, kind: str, cluster_id: str, part: str, created: str, **props: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "spec_version": "2.1",
            "id": self._id(kind, cluster_id, part),
            "created_by_ref": self.member.identity_id,
            "created": created,
            "modified": max(created, self.now),
            "object_marking_refs": [self.marking],
            **props,
        }

    def bundle(self, campaigns: list[tuple[Mapping[str, Any], CampaignFacts]], outsiders: Outsiders) -> dict[str, Any]:
        """One bundle holding every campaign; each object signed by this member."""
        objects: dict[str, dict[str, Any]] = {}
        for campaign, facts in campaigns:
            for obj in self.campaign_objects(campaign, facts, outsiders):
                objects[obj["id"]] = obj
        signed = [
            self.member.signer.sign(self.member.identity()),
            *(self.member.signer.sign(o) for o in objects.values()),
        ]
        shared = [*definitions_json(), marking_definition(self.policy.tlp)]
        return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": shared + signed}

    @staticmethod
    def _campaign_facts(campaign: Mapping[str, Any], facts: CampaignFacts, first: str, last: str) -> dict[str, Any]:
        """The campaign property extension; lists that would be empty are left out (STIX forbids empty lists)."""
        capabilities = campaign.get("capabilities") or {}
        lists = {
            "capabilities": [{"name": k, "calls": int(v)} for k, v in capabilities.items()],
            "models": [{"name": k, "calls": v} for k, v in facts.models.most_common(10)],
            "evidence_kinds": sorted({str(e.get("kind")) for e in campaign.get("evidence") or []}),
        }
        return {
            "extension_type": "property-extension",
            "campaign": facts.cluster_id,
            "accounts": len(facts.members),
            "events": facts.events,
            "tokens": int(campaign.get("tokens") or 0),
            "first_seen": first,
            "last_seen": last,
            "verdict": str(campaign.get("verdict", "unknown")),
            **{name: values for name, values in lists.items() if values},
        }

    def campaign_objects(
        self, campaign: Mapping[str, Any], facts: CampaignFacts, outsiders: Outsiders
    ) -> list[dict[str, Any]]:
        cid = facts.cluster_id
        first = rfc3339_ms(from_epoch_us(facts.first_us)) if facts.first_us is not None else self.now
        last = rfc3339_ms(from_epoch_us(facts.last_us)) if facts.last_us is not None else self.now
        observables: list[dict[str, Any]] = []
        indicators: list[tuple[dict[str, Any], int]] = []

        def indicator(kind: IndicatorKind, part: str, pattern: str, values: int, sighted: int, **extra: Any) -> None:
            label = KIND_LABELS[kind]
            ind = self._sdo(
                "indicator",
                cid,
                f"indicator|{part}",
                first,
                name=f"Distillation campaign {cid}: {label}",
                description=(
                    f"{values} {label} seen in a model-extraction campaign of {len(facts.members)} accounts"
                    + (" (keyed under the sharing group's key)" if kind not in ("ip_prefix",) else "")
                ),
                indicator_types=["malicious-activity"],
                pattern=pattern,
                pattern_type="stix",
                valid_from=first,
                extensions={
                    CAMPAIGN_EXT.id: {
                        "extension_type": "property-extension",
                        "campaign": cid,
                        "indicator_kind": kind,
                        "values": values,
                        **extra,
                    }
                },
            )
            indicators.append((ind, sighted))

        key_id = self.key.key_id
        identifier_sets: list[tuple[IdentifierKind, set[str]]] = [
            ("account_id", set(facts.members)),
            ("org_id", facts.org_ids),
            ("payment_fingerprint", facts.payment_fingerprints),
            ("email_domain", facts.email_domains),
        ]
        fingerprints = {
            fp for fp in facts.client_fingerprints if outsiders.specific(f"fp:{fp}") and outsiders.specific(f"tls:{fp}")
        }
        identifier_sets.append(("client_fingerprint", fingerprints))
        for kind, values in identifier_sets:
            hashed = sorted({self.key.keyed(kind, v) for v in values if normalise(v)})
            if not hashed:
                continue
            observables += [_observable(KeyedIdentifier, kind=kind, hmac=h, key_id=key_id) for h in hashed]
            pattern = (
                f"[distillguard-keyed-identifier:kind = '{kind}' AND distillguard-keyed-identifier:key_id = "
                f"'{key_id}' AND distillguard-keyed-identifier:hmac IN ({_quoted(hashed)})]"
            )
            indicator(kind, kind, pattern, len(hashed), facts.events, key_id=key_id)

        shared_templates = sorted(
            (
                (calls, template_id, text)
                for template_id, (text, calls) in facts.templates.items()
                if calls >= MIN_TEMPLATE_CALLS and outsiders.specific(f"tpl:{template_id}")
            ),
            reverse=True,
        )[: self.policy.templates_per_campaign]
        for rank, (calls, template_id, text) in enumerate(shared_templates):
            bands = list(self.templates.sign_skeleton(text).bands)
            exact = self.templates.exact(template_id)
            observables.append(
                _observable(TemplateSignatureObservable, scheme=SCHEME, bands=bands, key_id=key_id, exact=exact)
            )
            pattern = (
                f"[distillguard-template-signature:scheme = '{SCHEME}' AND distillguard-template-signature:key_id = "
                f"'{key_id}' AND (distillguard-template-signature:exact = '{exact}' OR "
                f"distillguard-template-signature:bands[*] IN ({_quoted(bands)}))]"
            )
            indicator("template", f"template|{rank}", pattern, 1, calls, key_id=key_id, scheme=SCHEME, calls=calls)

        prefixes = sorted(p for p in facts.ip_prefixes if outsiders.specific(f"ip:{p}"))
        if prefixes:
            terms = []
            for prefix in prefixes:
                v6 = ":" in prefix
                observables.append(_json(IPv6Address(value=prefix) if v6 else IPv4Address(value=prefix)))
                terms.append(f"{'ipv6-addr' if v6 else 'ipv4-addr'}:value ISSUBSET '{prefix}'")
            calls = sum(facts.ip_prefixes[p] for p in prefixes)
            indicator("ip_prefix", "ip_prefix", "[" + " OR ".join(terms) + "]", len(prefixes), calls)

        if not indicators:
            return []  # nothing a partner could match: no objects (STIX forbids the empty lists they would hold)
        observed = self._sdo(
            "observed-data",
            cid,
            "observed",
            first,
            first_observed=first,
            last_observed=last,
            number_observed=max(1, facts.events),
            object_refs=sorted({o["id"] for o in observables}),
        )
        sightings = [
            self._sdo(
                "sighting",
                cid,
                f"sighting|{ind['id']}",
                first,
                sighting_of_ref=ind["id"],
                count=max(1, calls),
                first_seen=first,
                last_seen=last,
                where_sighted_refs=[self.member.identity_id],
                observed_data_refs=[observed["id"]],
            )
            for ind, calls in indicators
        ]
        notes = []
        if self.policy.examples_allowed and facts.examples:
            notes.append(
                self._sdo(
                    "note",
                    cid,
                    "examples",
                    first,
                    abstract=f"Example prompts of campaign {cid}",
                    content="\n\n---\n\n".join(facts.examples),
                    object_refs=[self._id("grouping", cid, "grouping")],
                )
            )
        grouping = self._sdo(
            "grouping",
            cid,
            "grouping",
            first,
            name=f"Distillation campaign {cid}",
            description=(
                f"{len(facts.members)} linked accounts sent {facts.events} calls between {first} and {last}, "
                f"judged {campaign.get('verdict', 'unknown')} by distillguard"
            ),
            context="suspicious-activity",
            object_refs=[i["id"] for i, _ in indicators]
            + [observed["id"]]
            + [s["id"] for s in sightings]
            + [n["id"] for n in notes],
            extensions={CAMPAIGN_EXT.id: self._campaign_facts(campaign, facts, first, last)},
        )
        return [grouping, *(i for i, _ in indicators), observed, *sightings, *notes, *observables]


def campaign_level(campaign: Mapping[str, Any]) -> int:
    """How firmly a campaign is judged: its own verdict, or its median member's if that is stronger (a campaign
    scored as one account can come out lower than the members it links, each flagged on its own)."""
    from distillguard.respond.policy import RANK

    ranks = sorted(RANK.get(m.get("verdict") or "allow", 0) for m in campaign.get("members") or [])
    median = ranks[len(ranks) // 2] if ranks else 0
    return max(RANK.get(campaign.get("verdict") or "allow", 0), median)


def select_campaigns(
    campaigns: list[dict[str, Any]], ids: list[str], since: str | None, min_level: str
) -> list[dict[str, Any]]:
    """The campaigns named by ``ids``, or else those seen since ``since`` (RFC 3339) judged at least ``min_level``."""
    from distillguard.respond.policy import RANK

    if ids:
        by_id = {c["cluster_id"]: c for c in campaigns}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise LookupError(f"no campaign {', '.join(missing)} in the campaigns file")
        return [by_id[i] for i in ids]
    if min_level not in RANK:
        raise ValueError(f"unknown level {min_level!r}; expected one of {', '.join(RANK)}")
    chosen = [c for c in campaigns if campaign_level(c) >= RANK[min_level]]
    if since is not None:
        chosen = [c for c in chosen if str(c.get("last_seen", "")) >= since]
    return chosen


def export_bundle(
    settings: Settings,
    member: Member,
    campaigns: list[dict[str, Any]],
    policy: ExportPolicy,
    now: datetime,
    events_file: Path | None = None,
    accounts_file: Path | None = None,
) -> dict[str, Any]:
    """The signed bundle of ``campaigns``, with facts from an event log and the accounts' metadata: the JSONL files
    ``analyze`` read, or else the deployment's own event log and state store."""
    from distillguard.events.jsonl import read_events
    from distillguard.events.sqlite import EVENTS_DB, iter_events
    from distillguard.intel.facts import gather
    from distillguard.store import open_store
    from distillguard.store.accounts_file import read_accounts

    wanted = {m["account_id"] for c in campaigns for m in c["members"]}
    if accounts_file is not None:
        accounts = {a.account_id: a for a in read_accounts(accounts_file) if a.account_id in wanted}
    else:
        store = open_store(settings.data_dir, settings.store_url, settings.secret)
        try:
            accounts = {a: acc for a in wanted if (acc := store.get_account(a)) is not None}
        finally:
            store.close()
    events = read_events(events_file) if events_file is not None else iter_events(settings.data_dir / EVENTS_DB)
    facts, outsiders = gather(
        events, campaigns, accounts, settings.intel.template_max_outside_accounts, policy.examples_allowed
    )
    exporter = CampaignExporter(member, policy, now)
    return exporter.bundle([(c, facts[c["cluster_id"]]) for c in campaigns], outsiders)
