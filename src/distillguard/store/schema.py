"""Tables of the state store, as SQLAlchemy Core metadata (portable to PostgreSQL).

This is the schema the code reads and writes; the database gets it through the migrations in ``migrations/``
(a change here needs a new revision there: tests/store/test_migrations.py compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("org_id", String(200), nullable=True, index=True),
    Column("tier", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("payment_fingerprint", String(200), nullable=True),
    Column("email_domain", String(255), nullable=True),
    Column("country", String(8), nullable=True),
    Column("limits_override", JSON, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("account_id", String(200), ForeignKey("accounts.account_id"), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_account", "account_id"),
)

# Response (respond/): cases for review, the standing of each account, appeals, labels, the audit trail.
cases = Table(
    "cases",
    metadata,
    # The reference a customer quotes in an appeal: "case_" + 12 hex digits.
    Column("case_id", String(32), primary_key=True),
    # "account" or "campaign" (a campaign case covers every member in `members`).
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(200), nullable=False),
    Column("members", JSON, nullable=False),
    # open, escalated (both awaiting a reviewer), confirmed, reversed.
    Column("status", String(16), nullable=False),
    # The level detection proposed, and the level applied while the case waits.
    Column("proposed", String(16), nullable=False),
    Column("applied", String(16), nullable=False),
    Column("risk", Float, nullable=True),
    Column("reasons", JSON, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_cases_status", "status", "updated_at"),
    Index("ix_cases_subject", "subject_id"),
)

standings = Table(
    "standings",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("level", String(16), nullable=False),
    # A level detection proposed above what may be applied without review (awaiting the case).
    Column("pending", String(16), nullable=True),
    Column("confirmed", Boolean, nullable=False, default=False),
    Column("exempt_until", DateTime(timezone=True), nullable=True),
    Column("case_id", String(32), nullable=True),
    Column("risk", Float, nullable=True),
    Column("reasons", JSON, nullable=False),
    Column("source", String(16), nullable=False),
    # The campaign (cluster id) the account was taken in with, if any: its answers carry the campaign's watermark key.
    Column("campaign", String(64), nullable=True),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("last_support", DateTime(timezone=True), nullable=False),
    # The audit entry that last changed the row: replicas read rows changed since the last entry they saw.
    Column("seq", BigInteger, nullable=False, index=True),
)

appeals = Table(
    "appeals",
    metadata,
    Column("appeal_id", String(32), primary_key=True),
    Column("case_id", String(32), ForeignKey("cases.case_id"), nullable=False, index=True),
    Column("account_id", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("contact", String(320), nullable=True),
    Column("filed_at", DateTime(timezone=True), nullable=False),
)

# Reviewers' decisions as labels for training and evaluation (a reversal says "benign", a confirmation "attack").
labels = Table(
    "labels",
    metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("account_id", String(200), nullable=False, index=True),
    Column("label", String(16), nullable=False),
    Column("case_id", String(32), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# The audit trail: append-only, hash-chained (each entry's hash covers the previous one's), never updated.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # A role and a name: "customer:" and an account id, "reviewer:" and a reviewer's name (revision 0002).
    Column("actor", String(400), nullable=False),
    Column("action", String(40), nullable=False),
    Column("case_id", String(32), nullable=True, index=True),
    Column("account_id", String(200), nullable=True, index=True),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The console charts actions over time from the index alone (revision 0003).
    Index("ix_audit_log_at", "at", "action"),
)
# One row: the newest entry's number and hash. Writers update it first, which serialises appends to the chain
# (a row lock on PostgreSQL, the write lock on SQLite).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    # Who acts with the token: the reviewer's name in the audit trail.
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


# Console sessions ended by a logout (console/auth.py): refused until they would have expired anyway, then pruned.
console_logouts = Table(
    "console_logouts",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("token_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_logouts_expires", "expires_at"),
)


# Intel (intel/): STIX objects received from partners, verified, each version kept as received.
intel_objects = Table(
    "intel_objects",
    metadata,
    Column("id", String(200), primary_key=True),
    # The object's `modified` (or `created`, or "" for objects without either): a TAXII version.
    Column("version", String(40), primary_key=True),
    Column("type", String(64), nullable=False),
    # The identity whose signature checked (a partner's), or this deployment's own identity.
    Column("signer", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_intel_objects_type", "type"),
)

# Where each hub collection was last read up to (TAXII `added_after`).
intel_cursors = Table(
    "intel_cursors",
    metadata,
    Column("source", String(400), primary_key=True),
    Column("added_after", String(40), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Console and cases (console/, cases/): what the gateway and the analyzers leave for analysts to look at.
# The newest online score of every account the gateway has scored (not only those with a standing above allow),
# written off the event loop in batches: the console's accounts table sorts and filters on it.
scores = Table(
    "scores",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("risk", Float, nullable=False),
    # The verdict the risk maps to (allow, watch, throttle, degrade, challenge, block).
    Column("verdict", String(16), nullable=False),
    # The reasons behind it, as ``Reason.to_json()`` gives them (rule, detail, evidence).
    Column("reasons", JSON, nullable=False),
    # Calls the scorer had seen of the account when it scored it.
    Column("calls", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # With the account id: the accounts table pages through risk order from the index alone, however deep.
    Index("ix_scores_risk", "risk", "account_id"),
    Index("ix_scores_verdict_risk", "verdict", "risk"),
)

# Each account's risk over time: a row when its verdict changes or its risk moves by at least 0.05 (bounded per
# account by the writer), so a timeline costs an index range scan.
score_history = Table(
    "score_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("risk", Float, nullable=False),
    Column("verdict", String(16), nullable=False),
    Index("ix_score_history_account_at", "account_id", "at"),
)

# Campaigns (hydra clusters) as the last clustering run found them: ``body`` is ``Campaign.to_json()`` plus
# ``links`` (the member pairs with the evidence on each edge). A campaign not found again keeps its row.
campaigns = Table(
    "campaigns",
    metadata,
    Column("cluster_id", String(32), primary_key=True),
    Column("found_at", DateTime(timezone=True), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("risk", Float, nullable=True),
    Column("size", Integer, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_campaigns_verdict", "verdict", "last_seen"),
)

campaign_members = Table(
    "campaign_members",
    metadata,
    Column("cluster_id", String(32), ForeignKey("campaigns.cluster_id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", String(200), primary_key=True),
    Column("link_strength", Float, nullable=True),
    Index("ix_campaign_members_account", "account_id"),
)

# Watermark and provenance checks an analyst ran (CLI, console or admin API), kept so that the console lists them
# and an evidence pack carries them with their p-values.
checks = Table(
    "checks",
    metadata,
    Column("check_id", String(32), primary_key=True),
    # "watermark" (text scanned for our watermark) or "provenance" (a suspect model's endpoint probed).
    Column("kind", String(16), nullable=False),
    # What it is about: "account", "campaign", "model" or "text", and its id (an account, a cluster, a model name).
    Column("subject_kind", String(16), nullable=True),
    Column("subject_id", String(200), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(400), nullable=False),
    Column("detected", Boolean, nullable=False),
    Column("p_value", Float, nullable=True),
    # The full result: ``Detection.to_json()`` or ``ProvenanceReport.to_json()``.
    Column("result", JSON, nullable=False),
    Index("ix_checks_subject", "subject_id", "at"),
    Index("ix_checks_at", "at"),
)


# Traffic rollups of a deployment whose events go to a Redis stream (no events.db): kept by the ingest workers as
# they archive (ingest/rollups.py), read by the console and evidence packs (events/shared_log.py). Same columns and
# meaning as the SQLite event log's rollups (events/rollups.py); times in epoch microseconds.
def _counters() -> list[Column[int]]:
    return [
        Column(name, BigInteger, nullable=False)
        for name in ("calls", "errors", "refused", "prompt_tokens", "completion_tokens")
    ]


traffic_minutes = Table(
    "traffic_minutes",
    metadata,
    Column("minute_us", BigInteger, primary_key=True, autoincrement=False),
    *_counters(),
)

account_traffic = Table(
    "account_traffic",
    metadata,
    # Text, not String(200): an event's account id is whatever the producer sent, and a long one must not stop ingest.
    Column("account_id", Text, primary_key=True),
    *_counters(),
    Column("first_us", BigInteger, nullable=False),
    Column("last_us", BigInteger, nullable=False),
    Index("ix_account_traffic_calls", "calls"),
    Index("ix_account_traffic_last", "last_us"),
)

# The same per account and hour (of the calls' time), with the range of stream ids of those calls (as the epoch
# milliseconds Redis appended them at, which archive file names carry): where in the archive an account's calls are,
# so that a read opens only the hours it called in and, in each, only the files appended while it did.
account_hours = Table(
    "account_hours",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("hour_us", BigInteger, primary_key=True, autoincrement=False),
    *_counters(),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
)

# The archive files already counted into the rollups, each recorded in the transaction that added it: a file seen
# again (its entries delivered again after a crash, or committed by two workers) is never counted twice. Rows whose
# entries can no longer be delivered again (below the group's oldest pending entry) are pruned.
rollup_files = Table(
    "rollup_files",
    metadata,
    # The file's path in the archive: "date=YYYY-MM-DD/hour=HH/part-<first>-<last>.parquet".
    Column("path", String(200), primary_key=True),
    # The largest stream id of its rows (<ms>-<seq>), as numbers: what pruning compares.
    Column("last_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Index("ix_rollup_files_last", "last_ms", "last_seq"),
)
