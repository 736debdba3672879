"""Traffic rollups kept by the ingest workers (a deployment whose events go to a Redis stream has no events.db):
calls, errors, refusals and tokens per minute, per account, and per account and hour with where its calls are in the
archive; and the archive files already counted."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Idempotent like the others: a database adopted as unversioned and replayed may already hold them.
    if sa.inspect(op.get_bind()).has_table("rollup_files"):
        return
    counts = ("calls", "errors", "refused", "prompt_tokens", "completion_tokens")
    op.create_table(
        "traffic_minutes",
        sa.Column("minute_us", sa.BigInteger, primary_key=True, autoincrement=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in counts),
    )
    op.create_table(
        "account_traffic",
        sa.Column("account_id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in (*counts, "first_us", "last_us")),
    )
    op.create_index("ix_account_traffic_calls", "account_traffic", ["calls"])
    op.create_index("ix_account_traffic_last", "account_traffic", ["last_us"])
    op.create_table(
        "account_hours",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("hour_us", sa.BigInteger, primary_key=True, autoincrement=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in (*counts, "first_ms", "last_ms")),
    )
    op.create_table(
        "rollup_files",
        sa.Column("path", sa.String(200), primary_key=True),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rollup_files_last", "rollup_files", ["last_ms", "last_seq"])


def downgrade() -> None:
    op.drop_table("rollup_files")
    op.drop_table("account_hours")
    op.drop_table("account_traffic")
    op.drop_table("traffic_minutes")
