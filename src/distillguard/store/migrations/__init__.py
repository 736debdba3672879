"""Alembic migrations of the state store, run by :func:`distillguard.store.migrate.upgrade` (no alembic.ini).

A new revision is a module in ``versions/`` whose ``down_revision`` is the current head. It describes the schema
change itself, frozen at the time it was written (never importing ``schema.py``, which keeps moving);
tests/store/test_migrations.py checks that the migrated database equals ``schema.metadata`` on SQLite and PostgreSQL.
"""
