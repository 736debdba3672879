"""Console sessions ended by logging out: a copy of the cookie taken before the logout is refused from then on."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Idempotent like the others: a database adopted as unversioned and replayed may already hold it.
    if sa.inspect(op.get_bind()).has_table("console_logouts"):
        return
    op.create_table(
        "console_logouts",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_logouts_expires", "console_logouts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_logouts_expires", table_name="console_logouts")
    op.drop_table("console_logouts")
