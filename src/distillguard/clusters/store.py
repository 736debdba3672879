"""Campaigns in the state store: ``campaigns`` (a row per campaign, its JSON in ``body``) and ``campaign_members``.

Saved by the clustering job in ``serve``, ``distillguard clusters --data-dir``, ``analyze --data-dir`` and ``review
import-campaigns``; read by the console and evidence packs. Saving a campaign replaces its row and its members; a
campaign not found again keeps its row (what was found then).

**Campaign ids across runs.** A campaign's id is a hash of its members, so a campaign that gains or loses accounts
between two runs would otherwise come back under a new id, with a new case and a new watermark key. Before saving,
:func:`carry_ids` gives each campaign found the id of the stored campaign it continues: the one with which it
shares the most accounts, provided those are more than half of the stored campaign's. Each stored id goes to one
campaign at most; a campaign that continues none keeps its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from distillguard.clusters.campaign import Campaign
from distillguard.detect.verdicts import VERDICTS, Verdict
from distillguard.store.chunks import chunks
from distillguard.store.schema import campaign_members, campaigns
from distillguard.store.upsert import upsert
from distillguard.timefmt import parse_rfc3339

# The widths of the id columns (store/schema.py): PostgreSQL refuses longer values, so they are checked up front.
MAX_CLUSTER_ID = 32
MAX_ACCOUNT_ID = 200


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A campaign as the store and the case book need it, read from ``Campaign.to_json()`` (or a campaigns file)."""

    cluster_id: str
    verdict: Verdict
    risk: float | None
    members: dict[str, float | None]  # account id -> link strength
    events: int
    tokens: int
    first_seen: datetime
    last_seen: datetime
    # The kinds of linking evidence, strongest first: the reasons of a campaign case.
    kinds: list[str]
    body: dict[str, Any]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_campaign(row: Any, n: int) -> CampaignRecord:
    """Validate one campaign object (the ``n``-th of its file); a ValueError says what is wrong with it."""
    try:
        cluster_id = row["cluster_id"]
        members = {m["account_id"]: m.get("link_strength") for m in row["members"]}
        listed = len(row["members"])
        verdict = row["verdict"]
        risk = row.get("risk")
        kinds = [e["kind"] for e in row.get("evidence") or []]
        counts = row["events"], row["tokens"]
        seen = row["first_seen"], row["last_seen"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"campaign {n}: missing or malformed field {exc}") from None
    if not isinstance(cluster_id, str) or not 0 < len(cluster_id) <= MAX_CLUSTER_ID:
        raise ValueError(f"campaign {n}: cluster_id must be a string of 1 to {MAX_CLUSTER_ID} characters")
    where = f"campaign {n} ({cluster_id})"
    if not members or not all(isinstance(m, str) and 0 < len(m) <= MAX_ACCOUNT_ID for m in members):
        raise ValueError(f"{where}: members must name accounts (ids of 1 to {MAX_ACCOUNT_ID} characters)")
    if len(members) != listed:
        raise ValueError(f"{where}: an account is listed twice among the members")
    if not all(s is None or _number(s) for s in members.values()):
        raise ValueError(f"{where}: link_strength must be a number")
    if verdict not in VERDICTS:
        raise ValueError(f"{where}: unknown verdict {verdict!r}")
    if risk is not None and not _number(risk):
        raise ValueError(f"{where}: risk must be a number")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise ValueError(f"{where}: events and tokens must be counts")
    try:
        first_seen, last_seen = (parse_rfc3339(t) for t in seen)
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{where}: first_seen and last_seen must be RFC 3339 times") from None
    body = {**row, "links": row.get("links") or []}
    return CampaignRecord(
        cluster_id,
        verdict,
        None if risk is None else float(risk),
        {m: None if s is None else float(s) for m, s in members.items()},
        counts[0],
        counts[1],
        first_seen,
        last_seen,
        [str(k) for k in kinds],
        body,
    )


def parse_campaigns(rows: Iterable[Any]) -> list[CampaignRecord]:
    """Validate every campaign before anything acts on one."""
    return [parse_campaign(row, n) for n, row in enumerate(rows, 1)]


def save_campaigns(engine: Engine, records: Sequence[CampaignRecord], found_at: datetime) -> None:
    """Write the campaigns and replace their members, in one transaction."""
    if not records:
        return
    rows = [
        {
            "cluster_id": r.cluster_id,
            "found_at": found_at,
            "verdict": r.verdict,
            "risk": r.risk,
            "size": len(r.members),
            "events": r.events,
            "tokens": r.tokens,
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
            "body": r.body,
        }
        for r in records
    ]
    with engine.begin() as conn:
        upsert(conn, campaigns, rows, ["cluster_id"])
        for part in chunks([r.cluster_id for r in records]):
            conn.execute(delete(campaign_members).where(campaign_members.c.cluster_id.in_(part)))
        conn.execute(
            insert(campaign_members),
            [
                {"cluster_id": r.cluster_id, "account_id": account_id, "link_strength": strength}
                for r in records
                for account_id, strength in r.members.items()
            ],
        )


def carry_ids(engine: Engine, found: Sequence[Campaign]) -> int:
    """Give each campaign found the id of the stored campaign it continues (see the module's docstring); returns how
    many were given a stored id other than their own."""
    member_of = {m: i for i, c in enumerate(found) for m in c.members}
    overlap: dict[str, Counter[int]] = defaultdict(Counter)
    with engine.connect() as conn:
        for part in chunks(sorted(member_of)):
            rows = conn.execute(
                select(campaign_members.c.cluster_id, campaign_members.c.account_id).where(
                    campaign_members.c.account_id.in_(part)
                )
            )
            for cluster_id, account_id in rows:
                overlap[cluster_id][member_of[account_id]] += 1
        sizes: dict[str, int] = {}
        for part in chunks(sorted(overlap)):
            rows = conn.execute(
                select(campaigns.c.cluster_id, campaigns.c.size).where(campaigns.c.cluster_id.in_(part))
            )
            sizes.update({cluster_id: int(size) for cluster_id, size in rows})
    candidates = sorted(
        (
            (shared, stored, index)
            for stored, counts in overlap.items()
            for index, shared in counts.items()
            if 2 * shared > sizes.get(stored, 0)
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    taken: set[str] = set()
    given: dict[int, str] = {}
    for _, stored, index in candidates:
        if stored not in taken and index not in given:
            taken.add(stored)
            given[index] = stored
    carried = 0
    for index, stored in given.items():
        if found[index].cluster_id != stored:
            found[index].cluster_id = stored
            carried += 1
    return carried
