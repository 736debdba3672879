"""The revisions, oldest first by number; Alembic reads the chain from each module's ``down_revision``."""
