"""The case book: standings, cases, appeals, labels and the audit trail, in the state store (any SQLAlchemy URL).

Every change of state is one transaction that appends its audit entries and writes the rows they describe, so
the trail and the state never disagree. Readers elsewhere (other gateway replicas, the console) follow changes by
the audit sequence number: ``standings_since(seq)``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from distillguard.config import Level, RespondConfig
from distillguard.detect.verdicts import Thresholds
from distillguard.respond.audit import GENESIS, AuditEntry, entry_hash, first_broken
from distillguard.respond.policy import RANK
from distillguard.respond.standing import Change, Standing, Transitions
from distillguard.store import keys as keyfmt
from distillguard.store.chunks import chunks
from distillguard.store.schema import admin_tokens, appeals, audit_head, audit_log, cases, labels, standings
from distillguard.timefmt import as_utc, epoch_us, from_epoch_us, rfc3339, utcnow

log = logging.getLogger(__name__)

CaseStatus = Literal["open", "escalated", "confirmed", "reversed"]
OPEN_STATUSES: tuple[CaseStatus, ...] = ("open", "escalated")
SYSTEM = "system:detector"
# Appeals one account may file on one case (each is an audit entry: no flooding the trail).
MAX_APPEALS = 5
# The widths of the name and contact columns (schema.py): checked here because PostgreSQL refuses a longer value
# where SQLite would have stored it, and the caller should get the same answer on both.
MAX_NAME = 200
MAX_CONTACT = 320


class CaseError(Exception):
    """A review action that cannot be taken: unknown case, or a case not in a state that allows it."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    subject_kind: str
    subject_id: str
    members: list[str]
    status: CaseStatus
    proposed: Level
    applied: Level
    risk: float | None
    reasons: list[str]
    opened_at: datetime
    updated_at: datetime

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "subject": {"kind": self.subject_kind, "id": self.subject_id},
            "members": self.members,
            "status": self.status,
            "proposed": self.proposed,
            "applied": self.applied,
            "risk": self.risk,
            "reasons": self.reasons,
            "opened_at": rfc3339(self.opened_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Appeal:
    appeal_id: str
    case_id: str
    account_id: str
    message: str
    contact: str | None
    filed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "appeal_id": self.appeal_id,
            "case_id": self.case_id,
            "account_id": self.account_id,
            "message": self.message,
            "contact": self.contact,
            "filed_at": rfc3339(self.filed_at),
        }


def _case(row: Any) -> Case:
    m = row._mapping
    return Case(
        m["case_id"],
        m["subject_kind"],
        m["subject_id"],
        list(m["members"]),
        m["status"],
        m["proposed"],
        m["applied"],
        m["risk"],
        list(m["reasons"]),
        as_utc(m["opened_at"]),
        as_utc(m["updated_at"]),
    )


def _entry(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        m["seq"],
        as_utc(m["at"]),
        m["actor"],
        m["action"],
        m["case_id"],
        m["account_id"],
        dict(m["detail"]),
        m["prev_hash"],
        m["hash"],
    )


def _standing(row: Any) -> Standing:
    m = row._mapping
    exempt = m["exempt_until"]
    return Standing(
        account_id=m["account_id"],
        level=m["level"],
        pending=m["pending"],
        confirmed=bool(m["confirmed"]),
        exempt_until_us=epoch_us(as_utc(exempt)) if exempt is not None else None,
        case_id=m["case_id"],
        risk=m["risk"],
        reasons=list(m["reasons"]),
        source=m["source"],
        campaign=m["campaign"],
        since_us=epoch_us(as_utc(m["since"])),
        last_support_us=epoch_us(as_utc(m["last_support"])),
        seq=m["seq"],
    )


def new_case_id() -> str:
    return "case_" + secrets.token_hex(6)


class CaseBook:
    def __init__(self, engine: Engine, secret: bytes, config: RespondConfig, thresholds: Thresholds) -> None:
        self._engine = engine
        self._secret = secret
        self.config = config
        self.transitions = Transitions(config, thresholds)
        try:
            with engine.begin() as conn:
                if conn.execute(select(audit_head.c.id)).first() is None:
                    conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        except IntegrityError:
            pass  # another process created the head row at the same moment

    # the audit chain --------------------------------------------------------------------------------
    @staticmethod
    def _serialise(conn: Connection) -> None:
        """Take the chain's head row before reading what a change depends on (a case's status, a standing's seq).

        Every change appends to the chain, so holding its head makes writers run one at a time, each on what the
        previous one committed: a row lock on PostgreSQL (whose reads would otherwise race under READ COMMITTED),
        the write lock on SQLite (which the driver would otherwise take only at the first write, after the reads).
        """
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq))

    def _append(
        self,
        conn: Connection,
        actor: str,
        action: str,
        detail: dict[str, Any],
        case_id: str | None = None,
        account_id: str | None = None,
    ) -> int:
        # Taking the head row serialises writers (see _serialise); a second update in one transaction is free.
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
        seq, prev = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        at = utcnow()
        digest = entry_hash(seq, at, actor, action, case_id, account_id, detail, prev)
        conn.execute(
            insert(audit_log).values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                case_id=case_id,
                account_id=account_id,
                detail=detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=digest))
        return int(seq)

    def audit(self, since: int = 0, limit: int = 1000, case_id: str | None = None) -> list[AuditEntry]:
        query = select(audit_log).where(audit_log.c.seq > since).order_by(audit_log.c.seq).limit(limit)
        if case_id is not None:
            query = query.where(audit_log.c.case_id == case_id)
        with self._engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def audit_about(self, case_ids: Iterable[str], account_ids: Iterable[str]) -> list[AuditEntry]:
        """Every entry about any of these cases or accounts, in chain order (the trail of an evidence pack)."""
        found: dict[int, AuditEntry] = {}
        with self._engine.connect() as conn:
            for column, ids in ((audit_log.c.case_id, case_ids), (audit_log.c.account_id, account_ids)):
                for part in chunks(sorted(set(ids))):
                    for row in conn.execute(select(audit_log).where(column.in_(list(part)))):
                        found[row._mapping["seq"]] = _entry(row)
        return [found[seq] for seq in sorted(found)]

    def chain_head(self) -> tuple[int, str]:
        """The newest entry's number and hash (0 and the genesis hash for an empty trail)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        return int(row.seq), str(row.hash)

    def verify(self) -> tuple[int, int | None]:
        """(entries checked, seq of the first entry that does not check out or None)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).fetchall()
        entries = [_entry(r) for r in rows]
        broken = first_broken(entries)
        checked = len(entries) if broken is None else sum(1 for e in entries if e.seq < broken)
        return checked, broken

    # standings --------------------------------------------------------------------------------------
    def _write_standing(self, conn: Connection, st: Standing, seq: int) -> None:
        st.seq = seq
        values = {
            "level": st.level,
            "pending": st.pending,
            "confirmed": st.confirmed,
            "exempt_until": from_epoch_us(st.exempt_until_us) if st.exempt_until_us else None,
            "case_id": st.case_id,
            "risk": st.risk,
            "reasons": st.reasons,
            "source": st.source,
            "campaign": st.campaign,
            "since": from_epoch_us(st.since_us),
            "last_support": from_epoch_us(st.last_support_us),
            "seq": seq,
        }
        done = conn.execute(update(standings).where(standings.c.account_id == st.account_id).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(standings).values(account_id=st.account_id, **values))

    def standings_since(self, seq: int = 0) -> list[Standing]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(standings).where(standings.c.seq > seq).order_by(standings.c.seq))
            return [_standing(r) for r in rows]

    def standing(self, account_id: str) -> Standing:
        with self._engine.connect() as conn:
            row = conn.execute(select(standings).where(standings.c.account_id == account_id)).first()
        return _standing(row) if row is not None else Standing(account_id)

    def standings_of(self, account_ids: Sequence[str]) -> list[Standing]:
        """The standings of many accounts in one query per 500 (in the order given; allow for those without one)."""
        found: dict[str, Standing] = {}
        with self._engine.connect() as conn:
            for part in chunks(list(account_ids)):
                for row in conn.execute(select(standings).where(standings.c.account_id.in_(part))):
                    found[row.account_id] = _standing(row)
        return [found.get(a) or Standing(a) for a in account_ids]

    @property
    def engine(self) -> Engine:
        """The state store the book keeps its tables in (for the tables beside them: campaigns, scores)."""
        return self._engine

    def head(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())

    # what detection moved ---------------------------------------------------------------------------
    def record(self, changes: list[tuple[Standing, Change]], actor: str = SYSTEM) -> list[str]:
        """Persist the moves of standings (already applied in memory), opening or updating cases as the policy
        says; returns the ids of cases opened.

        A standing changed in the store since it was read (a reviewer's decision, a campaign case) wins: the move
        made on the older copy is dropped, and the caller adopts the stored one at its next sync."""
        opened: list[str] = []
        with self._engine.begin() as conn:
            self._serialise(conn)
            for st, change in changes:
                stored = conn.execute(select(standings.c.seq).where(standings.c.account_id == st.account_id)).first()
                if stored is not None and stored[0] != st.seq:
                    log.info("standing changed elsewhere; move dropped", extra={"account_id": st.account_id})
                    continue
                if change.needs_case:
                    case_id = self._case_for(conn, st, change, actor)
                    if case_id is not None:
                        opened.append(case_id)
                seq = self._append(conn, actor, "level_" + change.kind, change.detail(), st.case_id, st.account_id)
                self._write_standing(conn, st, seq)
        return opened

    def _case_for(self, conn: Connection, st: Standing, change: Change, actor: str) -> str | None:
        """Update the account's open case, or open one (under the id the responder gave it in memory, if any);
        returns the id when a case was opened."""
        proposed = change.pending or change.after
        now = utcnow()
        if st.case_id is not None:
            row = conn.execute(select(cases).where(cases.c.case_id == st.case_id)).first()
            if row is not None and row._mapping["status"] in OPEN_STATUSES:
                if row._mapping["subject_kind"] == "campaign" and change.source != "campaign":
                    # One member's own verdict does not rewrite the campaign's case: its move is in the trail.
                    return None
                if RANK[proposed] > RANK[row._mapping["proposed"]] or change.after != row._mapping["applied"]:
                    conn.execute(
                        update(cases)
                        .where(cases.c.case_id == st.case_id)
                        .values(
                            proposed=proposed,
                            applied=change.after,
                            risk=change.risk,
                            reasons=list(change.reasons),
                            updated_at=now,
                        )
                    )
                    detail = {"proposed": proposed, "applied": change.after, "risk": change.detail()["risk"]}
                    self._append(conn, actor, "case_updated", detail, st.case_id, st.account_id)
                return None
            if row is not None:
                st.case_id = None  # that case is closed: this is a new one
        case_id = st.case_id or new_case_id()
        conn.execute(
            insert(cases).values(
                case_id=case_id,
                subject_kind="account",
                subject_id=st.account_id,
                members=[st.account_id],
                status="open",
                proposed=proposed,
                applied=change.after,
                risk=change.risk,
                reasons=list(change.reasons),
                opened_at=now,
                updated_at=now,
            )
        )
        detail = {"proposed": proposed, "applied": change.after, **change.detail()}
        self._append(conn, actor, "case_opened", detail, case_id, st.account_id)
        st.case_id = case_id
        return case_id

    # campaigns (from `distillguard analyze`) --------------------------------------------------------
    def open_campaign_case(
        self, cluster_id: str, members: list[str], verdict: Level, risk: float | None, reasons: list[str], actor: str
    ) -> Case:
        """A case for a whole campaign: every member's standing moves to the campaign's verdict (within the
        automatic cap), and a reviewer's decision on the case applies to all of them."""
        now = utcnow()
        now_us = epoch_us(now)
        cap = self.config.review.automatic_up_to
        applied: Level = verdict if RANK[verdict] <= RANK[cap] else cap
        with self._engine.begin() as conn:
            self._serialise(conn)
            row = conn.execute(
                select(cases).where(cases.c.subject_id == cluster_id, cases.c.status.in_(OPEN_STATUSES))
            ).first()
            if row is not None:
                case_id = row._mapping["case_id"]
                conn.execute(
                    update(cases)
                    .where(cases.c.case_id == case_id)
                    .values(
                        members=members, proposed=verdict, applied=applied, risk=risk, reasons=reasons, updated_at=now
                    )
                )
                action = "campaign_case_updated"
            else:
                case_id = new_case_id()
                conn.execute(
                    insert(cases).values(
                        case_id=case_id,
                        subject_kind="campaign",
                        subject_id=cluster_id,
                        members=members,
                        status="open",
                        proposed=verdict,
                        applied=applied,
                        risk=risk,
                        reasons=reasons,
                        opened_at=now,
                        updated_at=now,
                    )
                )
                action = "campaign_case_opened"
            detail = {"cluster_id": cluster_id, "members": len(members), "proposed": verdict, "applied": applied}
            self._append(conn, actor, action, {**detail, "risk": risk, "reasons": reasons}, case_id)
            for account_id in members:
                st = self._load(conn, account_id)
                change = self.transitions.on_verdict(st, verdict, risk, reasons, now_us, source="campaign")
                if change is None:
                    continue
                st.case_id, st.campaign = case_id, cluster_id
                seq = self._append(conn, actor, "level_" + change.kind, change.detail(), case_id, account_id)
                self._write_standing(conn, st, seq)
            return _case(conn.execute(select(cases).where(cases.c.case_id == case_id)).one())

    @staticmethod
    def _load(conn: Connection, account_id: str) -> Standing:
        row = conn.execute(select(standings).where(standings.c.account_id == account_id)).first()
        return _standing(row) if row is not None else Standing(account_id)

    # review -----------------------------------------------------------------------------------------
    def cases(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Case]:
        query = select(cases).order_by(cases.c.updated_at.desc(), cases.c.case_id).limit(limit).offset(offset)
        if status is not None:
            query = query.where(cases.c.status == status)
        with self._engine.connect() as conn:
            return [_case(r) for r in conn.execute(query)]

    def count_cases(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))
            return {status: int(n) for status, n in rows}

    def case(self, case_id: str) -> Case:
        with self._engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.case_id == case_id)).first()
        if row is None:
            raise CaseError(f"no case {case_id!r}", 404)
        return _case(row)

    def latest_case(self, subject_kind: str, subject_id: str) -> Case | None:
        """The newest case, open or closed, about an account or (``subject_kind`` "campaign") a cluster id."""
        query = (
            select(cases)
            .where(cases.c.subject_id == subject_id, cases.c.subject_kind == subject_kind)
            .order_by(cases.c.opened_at.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _case(row) if row is not None else None

    def appeals(self, case_id: str) -> list[Appeal]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(appeals).where(appeals.c.case_id == case_id).order_by(appeals.c.filed_at))
            return [
                Appeal(m["appeal_id"], m["case_id"], m["account_id"], m["message"], m["contact"], as_utc(m["filed_at"]))
                for m in (r._mapping for r in rows)
            ]

    def confirm(self, case_id: str, reviewer: str, reason: str, level: Level | None = None) -> Case:
        """The reviewer agrees: the proposed level (or ``level``) applies to every member and holds until reversed."""
        return self._review(case_id, reviewer, reason, "confirmed", level)

    def reverse(self, case_id: str, reviewer: str, reason: str) -> Case:
        """The reviewer disagrees: service is restored to every member at once, detection leaves them alone for
        ``review.reversal_exempt_days``, and the reason is kept as a "benign" label."""
        return self._review(case_id, reviewer, reason, "reversed", None)

    def escalate(self, case_id: str, reviewer: str, reason: str) -> Case:
        """Hand the case to a senior reviewer; what applies to the account does not change."""
        return self._review(case_id, reviewer, reason, "escalated", None)

    def _review(self, case_id: str, reviewer: str, reason: str, status: CaseStatus, level: Level | None) -> Case:
        reason = reason.strip()
        if not reason:
            raise CaseError("a reason is required: it is kept in the audit trail (and as a label)", 400)
        if len(reviewer) > MAX_NAME:
            raise CaseError(f"a reviewer's name is at most {MAX_NAME} characters", 400)
        actor = f"reviewer:{reviewer}"
        now = utcnow()
        now_us = epoch_us(now)
        with self._engine.begin() as conn:
            self._serialise(conn)
            row = conn.execute(select(cases).where(cases.c.case_id == case_id)).first()
            if row is None:
                raise CaseError(f"no case {case_id!r}", 404)
            case = _case(row)
            if not case.open and not (status == "reversed" and case.status == "confirmed"):
                raise CaseError(f"case {case_id} is {case.status}; only open or escalated cases can be {status}")
            if status == "escalated" and case.status == "escalated":
                raise CaseError(f"case {case_id} is already escalated")
            target: Level = level or case.proposed
            applied = case.applied
            if status == "confirmed":
                applied = target
            elif status == "reversed":
                applied = "allow"
            conn.execute(
                update(cases).where(cases.c.case_id == case_id).values(status=status, applied=applied, updated_at=now)
            )
            detail = {"from": case.status, "to": status, "reason": reason, "applied": applied}
            self._append(conn, actor, f"case_{status}", detail, case_id)
            if status == "escalated":
                return _case(conn.execute(select(cases).where(cases.c.case_id == case_id)).one())
            label = "attack" if status == "confirmed" else "benign"
            for account_id in case.members:
                st = self._load(conn, account_id)
                before = st.level
                st.pending, st.case_id, st.source = None, case_id, "review"
                if status == "confirmed":
                    st.level, st.confirmed, st.exempt_until_us = target, True, None
                else:
                    st.level, st.confirmed, st.case_id, st.campaign = "allow", False, None, None
                    st.exempt_until_us = now_us + int(self.config.review.reversal_exempt_days * 86_400_000_000)
                st.since_us = st.last_support_us = now_us
                change = {"from": before, "to": st.level, "reason": reason, "source": "review"}
                seq = self._append(conn, actor, "level_" + status, change, case_id, account_id)
                self._write_standing(conn, st, seq)
                conn.execute(
                    insert(labels).values(
                        seq=seq,
                        account_id=account_id,
                        label=label,
                        case_id=case_id,
                        reviewer=reviewer,
                        reason=reason,
                        at=now,
                    )
                )
            return _case(conn.execute(select(cases).where(cases.c.case_id == case_id)).one())

    def appeal(
        self,
        case_id: str,
        account_id: str,
        message: str,
        contact: str | None = None,
        filed_by: str | None = None,
    ) -> Appeal:
        """A customer's appeal, attached to the case that names them; the case is reopened for review if it was
        confirmed. ``filed_by`` names the staff member who files it on the customer's behalf."""
        message = message.strip()
        if not message:
            raise CaseError("an appeal needs a message", 400)
        if contact is not None and len(contact) > MAX_CONTACT:
            raise CaseError(f"a contact is at most {MAX_CONTACT} characters", 400)
        if filed_by is not None and len(filed_by) > MAX_NAME:
            raise CaseError(f"a staff member's name is at most {MAX_NAME} characters", 400)
        now = utcnow()
        with self._engine.begin() as conn:
            self._serialise(conn)
            row = conn.execute(select(cases).where(cases.c.case_id == case_id)).first()
            # The same answer for a case that does not exist and one about someone else: ids are not an oracle.
            if row is None or account_id not in row._mapping["members"]:
                raise CaseError(f"no case {case_id!r} concerns this account", 404)
            filed = conn.execute(
                select(func.count()).where(appeals.c.case_id == case_id, appeals.c.account_id == account_id)
            ).scalar_one()
            if filed >= MAX_APPEALS:
                raise CaseError(
                    f"this account has filed {filed} appeals on case {case_id}; a reviewer will answer them", 429
                )
            appeal = Appeal("appeal_" + secrets.token_hex(6), case_id, account_id, message[:10_000], contact, now)
            conn.execute(
                insert(appeals).values(
                    appeal_id=appeal.appeal_id,
                    case_id=case_id,
                    account_id=account_id,
                    message=appeal.message,
                    contact=contact,
                    filed_at=now,
                )
            )
            actor = f"staff:{filed_by}" if filed_by else f"customer:{account_id}"
            self._append(conn, actor, "appeal_filed", {"appeal_id": appeal.appeal_id}, case_id, account_id)
            if row._mapping["status"] == "confirmed":
                conn.execute(update(cases).where(cases.c.case_id == case_id).values(status="open", updated_at=now))
                self._append(conn, SYSTEM, "case_reopened", {"from": "confirmed", "to": "open"}, case_id)
        return appeal

    def labels(self) -> Iterator[dict[str, Any]]:
        with self._engine.connect() as conn:
            for m in (r._mapping for r in conn.execute(select(labels).order_by(labels.c.seq))):
                yield {
                    "account_id": m["account_id"],
                    "label": m["label"],
                    "case_id": m["case_id"],
                    "reviewer": m["reviewer"],
                    "reason": m["reason"],
                    "at": rfc3339(as_utc(m["at"])),
                }

    # admin tokens -----------------------------------------------------------------------------------
    def create_admin_token(self, name: str, actor: str) -> tuple[str, str]:
        """Issue a token for the admin API; returns (token_id, plaintext). Only its keyed hash is stored."""
        if not name.strip():
            raise CaseError("a token needs the name of who uses it", 400)
        if len(name.strip()) > MAX_NAME:
            raise CaseError(f"a token's name is at most {MAX_NAME} characters", 400)
        token_id, plaintext = keyfmt.new_key(keyfmt.ADMIN_PREFIX)
        with self._engine.begin() as conn:
            conn.execute(
                insert(admin_tokens).values(
                    token_id=token_id,
                    name=name.strip(),
                    token_hash=keyfmt.hash_key(self._secret, plaintext),
                    created_at=utcnow(),
                    revoked_at=None,
                )
            )
            self._append(conn, actor, "admin_token_created", {"token_id": token_id, "name": name.strip()})
        return token_id, plaintext

    def revoke_admin_token(self, token_id: str, actor: str) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(admin_tokens)
                .where(admin_tokens.c.token_id == token_id, admin_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if done.rowcount == 0:
                raise CaseError(f"no active admin token {token_id!r}", 404)
            self._append(conn, actor, "admin_token_revoked", {"token_id": token_id})

    def admin_tokens(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(admin_tokens).order_by(admin_tokens.c.created_at))
            return [
                {
                    "token_id": m["token_id"],
                    "name": m["name"],
                    "created_at": rfc3339(as_utc(m["created_at"])),
                    "revoked_at": rfc3339(as_utc(m["revoked_at"])) if m["revoked_at"] else None,
                }
                for m in (r._mapping for r in rows)
            ]

    def admin_name(self, presented: str) -> str | None:
        """Who holds the presented admin token (constant-time check), or None."""
        token_id = keyfmt.key_id_of(presented, keyfmt.ADMIN_PREFIX)
        if token_id is None:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(select(admin_tokens).where(admin_tokens.c.token_id == token_id)).first()
        if row is None or row._mapping["revoked_at"] is not None:
            return None
        if not keyfmt.key_matches(self._secret, presented, row._mapping["token_hash"]):
            return None
        return str(row._mapping["name"])
