"""What the console and evidence packs read: online scores and their history, campaigns and their members, and an
index on the audit trail's time (actions over time); and the watermark and provenance checks analysts ran."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Like the baseline, idempotent: a database whose revision table was lost (adopted as unversioned and replayed
    # from 0001) may already hold these.
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table("scores"):
        return
    op.create_table(
        "scores",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_scores_risk", "scores", ["risk", "account_id"])
    op.create_index("ix_scores_verdict_risk", "scores", ["verdict", "risk"])
    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
    )
    op.create_index("ix_score_history_account_at", "score_history", ["account_id", "at"])
    op.create_table(
        "campaigns",
        sa.Column("cluster_id", sa.String(32), primary_key=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("risk", sa.Float, nullable=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_campaigns_verdict", "campaigns", ["verdict", "last_seen"])
    op.create_table(
        "campaign_members",
        sa.Column(
            "cluster_id",
            sa.String(32),
            sa.ForeignKey("campaigns.cluster_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("link_strength", sa.Float, nullable=True),
    )
    op.create_index("ix_campaign_members_account", "campaign_members", ["account_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at", "action"])
    op.create_table(
        "checks",
        sa.Column("check_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=True),
        sa.Column("subject_id", sa.String(200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(400), nullable=False),
        sa.Column("detected", sa.Boolean, nullable=False),
        sa.Column("p_value", sa.Float, nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_index("ix_checks_subject", "checks", ["subject_id", "at"])
    op.create_index("ix_checks_at", "checks", ["at"])


def downgrade() -> None:
    op.drop_table("checks")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("campaign_members")
    op.drop_table("campaigns")
    op.drop_table("score_history")
    op.drop_table("scores")
