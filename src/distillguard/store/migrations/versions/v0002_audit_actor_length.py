"""The audit trail's ``actor`` holds up to 400 characters.

An actor is a role and a name (``customer:`` and an account id of up to 200 characters, ``reviewer:`` and a
reviewer's name), so 200 was too short: SQLite never enforced it, PostgreSQL refused the entry (and with it the
appeal or review it recorded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column's type in place, so its table is copied (PostgreSQL alters it).
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("actor", type_=sa.String(400), existing_type=sa.String(200), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("actor", type_=sa.String(200), existing_type=sa.String(400), existing_nullable=False)
