"""Alembic's entry point for the state store: migrates on the connection that ``migrate.upgrade`` holds (and locks)."""

from __future__ import annotations

from alembic import context

from distillguard.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the state store migrates through distillguard.store.migrate (`distillguard db upgrade`)")
# The target metadata lets autogenerate compare a database with schema.py; batch mode makes SQLite's ALTERs work.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
