"""Tables of the state store, as SQLAlchemy Core metadata (portable to PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Index, MetaData, String, Table

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
