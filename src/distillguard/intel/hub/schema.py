"""Tables of the TAXII hub, as SQLAlchemy Core metadata (SQLite by default, portable to PostgreSQL).

Times are integer microseconds since the epoch: exact, ordered and indexable on every engine, where DateTime
columns lose the microseconds on some and the time zone on others.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The members of the sharing group: one secret each, stored only as its keyed hash.
members = Table(
    "hub_members",
    metadata,
    Column("name", String(64), primary_key=True),
    # The public part of the secret (dg-hub-<key_id>_...): finds the member of a bearer secret.
    Column("key_id", String(32), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

api_roots = Table(
    "hub_api_roots",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
)

collections = Table(
    "hub_collections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), ForeignKey("hub_api_roots.name"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    # The newest date_added in the collection. Writers update this row first: that serialises them (the write
    # lock on SQLite, a row lock on PostgreSQL) and keeps date_added strictly increasing, so it is a cursor.
    Column("last_added_us", BigInteger, nullable=False),
    UniqueConstraint("api_root", "alias", name="uq_hub_collections_alias"),
)

rights = Table(
    "hub_rights",
    metadata,
    Column("member", String(64), ForeignKey("hub_members.name", ondelete="CASCADE"), primary_key=True),
    Column("collection_id", String(36), ForeignKey("hub_collections.id", ondelete="CASCADE"), primary_key=True),
    Column("can_read", Boolean, nullable=False),
    Column("can_write", Boolean, nullable=False),
    Index("ix_hub_rights_collection", "collection_id"),
)

# One row per version of an object in a collection, with the object's JSON as it was received.
objects = Table(
    "hub_objects",
    metadata,
    # An integer key for the row (SQLite makes INTEGER PRIMARY KEY its rowid; BIGINT would not autoincrement).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("collection_id", String(36), ForeignKey("hub_collections.id", ondelete="CASCADE"), nullable=False),
    Column("object_id", String(250), nullable=False),
    Column("type", String(250), nullable=False),
    Column("spec_version", String(8), nullable=False),
    # The TAXII version: `modified`, else `created`, else date_added; as written, and in microseconds for matching.
    Column("version", String(40), nullable=False),
    Column("version_us", BigInteger, nullable=False),
    Column("date_added_us", BigInteger, nullable=False),
    # Who shared it (not served: TAXII has no place for it; kept for the hub's operators).
    Column("added_by", String(64), nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("collection_id", "object_id", "version_us", name="uq_hub_objects_version"),
    UniqueConstraint("collection_id", "date_added_us", name="uq_hub_objects_added"),
)

# Status resources of POSTs, readable only by the member that made the POST.
statuses = Table(
    "hub_statuses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), nullable=False),
    Column("member", String(64), nullable=False, index=True),
    Column("created_us", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)
