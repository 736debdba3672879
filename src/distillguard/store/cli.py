"""``distillguard db``: the state store's schema revision: bring it to this version's, show it, list the history.

Every command that opens the store migrates it already; ``db upgrade`` is for doing it on purpose (before rolling
out new gateway replicas, or to see that a database is reachable and current) and ``db current`` only looks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from distillguard.clikit import AsJson, ConfigFile, DataDir, fail, json_out, load, out
from distillguard.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# SQLAlchemy and Alembic are imported inside the commands: every `distillguard` command loads this module, and
# most never touch the schema.
db_app = typer.Typer(
    help="The state store's schema: upgrade it, show its revision and the history.", no_args_is_help=True
)


def _where(settings: Settings) -> str:
    """The store's URL with any password hidden (it is shown in output and errors)."""
    from sqlalchemy.engine import make_url

    from distillguard.store.state import STATE_DB

    url = settings.store_url or f"sqlite:///{settings.data_dir / STATE_DB}"
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    """The store's engine, disposed at the end; a store that cannot be opened or reached is a clear error."""
    from sqlalchemy.exc import SQLAlchemyError

    from distillguard.store.state import store_engine

    try:
        engine = store_engine(settings.data_dir, settings.store_url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise fail(f"cannot use the state store {escape(_where(settings))}: {escape(str(exc))}") from None
    try:
        yield engine
    except SQLAlchemyError as exc:
        # The driver's message says what failed (refused, authentication, unknown database); its first line is enough.
        orig = getattr(exc, "orig", None)  # the driver's own error, when the failure came from the driver
        reason = str(orig if orig is not None else exc).strip().splitlines()[0]
        raise fail(f"the state store {escape(_where(settings))} is unreachable: {escape(reason)}") from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Bring the state store to this version's schema (create it, or adopt one made before migrations); print the
    revision.

    Example: distillguard db upgrade --config distillguard.toml
    """
    from distillguard.store import migrate

    settings = load(config, data_dir)
    with _engine(settings) as engine:
        before = migrate.current(engine)
        revision = migrate.upgrade(engine)
    if as_json:
        json_out({"store": _where(settings), "from": before, "revision": revision})
    elif before == revision:
        out.print(f"{revision} (head): already current")
    else:
        out.print(f"{revision} (head): upgraded from {before or 'an unversioned database'}")


@db_app.command("current")
def db_current(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Show the state store's revision and whether it is this version's head (changes nothing).

    Example: distillguard db current -d ./distillguard-data
    """
    from distillguard.store import migrate

    settings = load(config, data_dir)
    with _engine(settings) as engine:
        revision = migrate.current(engine)
        adoptable = revision is None and migrate.unversioned(engine)
    head = migrate.head()
    if as_json:
        json_out({"store": _where(settings), "revision": revision, "head": head, "current": revision == head})
    elif revision == head:
        out.print(f"{revision} (head)")
    elif revision is not None:
        out.print(f"{revision}: behind {head}; run `distillguard db upgrade`")
    elif adoptable:
        out.print("unversioned: made before migrations; `distillguard db upgrade` adopts it")
    else:
        out.print("empty: `distillguard db upgrade` (or any command that opens the store) creates it")


@db_app.command("history")
def db_history(as_json: AsJson = False) -> None:
    """List the schema revisions this version knows, oldest first.

    Example: distillguard db history
    """
    from distillguard.store import migrate

    revisions = migrate.history()
    rows: list[dict[str, Any]] = [
        {"revision": r.revision, "down_revision": r.down_revision, "doc": r.doc} for r in revisions
    ]
    if as_json:
        json_out(rows)
        return
    table = Table("revision", "after", "change")
    for row in rows:
        table.add_row(row["revision"], row["down_revision"] or "", escape(row["doc"]))
    out.print(table)
