"""Insert-or-update of many rows in one statement: ``INSERT … ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    newer: str | None = None,
) -> None:
    """Insert ``rows`` into ``table``, updating the other columns of rows whose ``keys`` exist already.

    With ``newer`` (a column name), an existing row is updated only when the new value of that column is at least
    the stored one: a late writer with older data (a batch analysis of last week's log) does not overwrite newer.
    """
    if not rows:
        return
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise ValueError(f"the state store runs on SQLite or PostgreSQL, not {name}")
    stmt = insert(table)
    columns = [c for c in rows[0] if c not in keys]
    where = None if newer is None else table.c[newer] <= stmt.excluded[newer]
    conn.execute(
        stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}, where=where),
        list(rows),
    )
