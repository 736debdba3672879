"""Baseline: the state store's tables as ``metadata.create_all`` made them before there were migrations.

A database from that time has no ``alembic_version`` table and some or all of these tables (the response tables
came with issue 6, ``standings.campaign`` later than its table, the intel tables later still; ``create_all`` never
added a column to a table that existed). This revision creates what is missing and leaves what exists, so such a
database is adopted with every row it holds, and a fresh one is built the same way.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _tables() -> sa.MetaData:
    """The schema at this revision (a frozen copy: later revisions change it, this file never does)."""
    meta = sa.MetaData()
    sa.Table(
        "accounts",
        meta,
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("org_id", sa.String(200), nullable=True, index=True),
        sa.Column("tier", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("payment_fingerprint", sa.String(200), nullable=True),
        sa.Column("email_domain", sa.String(255), nullable=True),
        sa.Column("country", sa.String(8), nullable=True),
        sa.Column("limits_override", sa.JSON, nullable=True),
    )
    sa.Table(
        "api_keys",
        meta,
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(200), sa.ForeignKey("accounts.account_id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_api_keys_account", "account_id"),
    )
    sa.Table(
        "cases",
        meta,
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("members", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed", sa.String(16), nullable=False),
        sa.Column("applied", sa.String(16), nullable=False),
        sa.Column("risk", sa.Float, nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_cases_status", "status", "updated_at"),
        sa.Index("ix_cases_subject", "subject_id"),
    )
    sa.Table(
        "standings",
        meta,
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("exempt_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.Column("risk", sa.Float, nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_support", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, index=True),
    )
    sa.Table(
        "appeals",
        meta,
        sa.Column("appeal_id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.case_id"), nullable=False, index=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("contact", sa.String(320), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "labels",
        meta,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=False, index=True),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "audit_log",
        meta,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=True, index=True),
        sa.Column("account_id", sa.String(200), nullable=True, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    sa.Table(
        "audit_head",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    sa.Table(
        "admin_tokens",
        meta,
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    sa.Table(
        "intel_objects",
        meta,
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Index("ix_intel_objects_type", "type"),
    )
    sa.Table(
        "intel_cursors",
        meta,
        sa.Column("source", sa.String(400), primary_key=True),
        sa.Column("added_after", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    return meta


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    meta = _tables()
    # sorted_tables: accounts before api_keys, cases before appeals (their foreign keys).
    for table in meta.sorted_tables:
        if table.name not in present:
            table.create(bind)
    if "standings" in present:
        columns = {c["name"] for c in sa.inspect(bind).get_columns("standings")}
        if "campaign" not in columns:
            op.add_column("standings", sa.Column("campaign", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in reversed(_tables().sorted_tables):
        op.drop_table(table.name)
