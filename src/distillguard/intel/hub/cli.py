"""The ``distillguard hub`` commands: serve the hub, and administer its members, collections and rights.

Each command is a thin call into HubStore; the store's refusals (unknown or duplicate names) end the command with
exit status 2 and a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from distillguard.clikit import AsJson, err, json_out, out
from distillguard.intel.hub.config import DEFAULT_MAX_CONTENT_LENGTH, DEFAULT_PORT, DEFAULT_TITLE, HubConfig

if TYPE_CHECKING:
    from distillguard.intel.hub.store import HubStore

hub_app = typer.Typer(
    help="Run a TAXII 2.1 hub where providers share indicators of distillation campaigns, and administer it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
member_app = typer.Typer(
    help="Add, list and remove the hub's members (the providers that share).", no_args_is_help=True
)
collection_app = typer.Typer(help="Create and list collections.", no_args_is_help=True)
root_app = typer.Typer(help="Add and list API roots (one, 'api', exists from the start).", no_args_is_help=True)
hub_app.add_typer(member_app, name="member")
hub_app.add_typer(collection_app, name="collection")
hub_app.add_typer(root_app, name="root")

SECRET_ENV = "DISTILLGUARD_HUB_SECRET"

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        "-d",
        envvar="DISTILLGUARD_HUB_DATA_DIR",
        help="The hub's directory: its secret (secret.key) and, by default, its database (hub.db).",
    ),
]
DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="DISTILLGUARD_HUB_DB_URL",
        help="SQLAlchemy URL of the database (default: SQLite in the data dir).",
    ),
]
DEFAULT_DATA_DIR = Path("./hub-data")


@contextmanager
def _hub(data_dir: Path, db_url: str | None) -> Iterator[HubStore]:
    """The hub's store; its refusals become a message and exit status 2."""
    from distillguard.intel.hub.store import HubError, open_hub_store

    store = open_hub_store(data_dir, db_url, os.environ.get(SECRET_ENV))
    try:
        yield store
    except HubError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        store.close()


def _rights_text(read: bool, write: bool) -> str:
    return ("r" if read else "") + ("w" if write else "")


# serve ----------------------------------------------------------------------------------------------
@hub_app.command()
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = DEFAULT_PORT,
    url: Annotated[
        str | None, typer.Option(help="The hub's public base URL, for the API root URLs of the discovery document.")
    ] = None,
    title: Annotated[str, typer.Option(help="The title in the discovery document.")] = DEFAULT_TITLE,
    max_content_length: Annotated[
        int, typer.Option(min=1024, help="Largest request body accepted, in bytes (advertised in each API root).")
    ] = DEFAULT_MAX_CONTENT_LENGTH,
) -> None:
    """Serve the TAXII 2.1 hub: discovery at /taxii2/, the API root 'api' at /taxii2/api/.

    Example: distillguard hub serve --data-dir ./hub --host 0.0.0.0 --port 9400 --url https://hub.example.org
    """
    from distillguard.intel.hub.server import serve as run
    from distillguard.intel.hub.store import open_hub_store

    config = HubConfig(title=title, public_url=url, max_content_length=max_content_length)
    store = open_hub_store(data_dir, db_url, os.environ.get(SECRET_ENV))
    err.print(f"hub on http://{host}:{port}/taxii2/")
    run(store, config, host, port)


# members --------------------------------------------------------------------------------------------
@member_app.command("add")
def member_add(
    name: Annotated[str, typer.Argument(help="The member's name: its user name in HTTP Basic authentication.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
    as_json: AsJson = False,
) -> None:
    """Add a member and print its secret, once; only a keyed hash of it is kept.

    Example: distillguard hub member add --data-dir ./hub acme-ai
    """
    with _hub(data_dir, db_url) as store:
        member, secret = store.add_member(name)
    if as_json:
        json_out({"name": member.name, "key_id": member.key_id, "secret": secret})
    else:
        err.print(f"member {escape(name)} added; its secret (shown once, it cannot be shown again; store it now):")
        print(secret)


@member_app.command("list")
def member_list(data_dir: DataDir = DEFAULT_DATA_DIR, db_url: DbUrl = None, as_json: AsJson = False) -> None:
    """List members and their rights (never their secrets).

    Example: distillguard hub member list --data-dir ./hub
    """
    from distillguard.intel.hub.stamps import format_stamp

    with _hub(data_dir, db_url) as store:
        members, rights = store.members(), store.rights()
        aliases = {c.id: c.alias for c in store.collections()}
    rows: list[dict[str, Any]] = [
        {
            "name": m.name,
            "key_id": m.key_id,
            "created_at": format_stamp(m.created_us),
            "rights": {
                aliases[r.collection_id]: _rights_text(r.can_read, r.can_write) for r in rights if r.member == m.name
            },
        }
        for m in members
    ]
    if as_json:
        json_out(rows)
        return
    table = Table("member", "key id", "created", "rights (collection: r/w)")
    for r in rows:
        table.add_row(
            escape(r["name"]), r["key_id"], r["created_at"], ", ".join(f"{c}: {v}" for c, v in r["rights"].items())
        )
    out.print(table)


@member_app.command("remove")
def member_remove(name: str, data_dir: DataDir = DEFAULT_DATA_DIR, db_url: DbUrl = None) -> None:
    """Remove a member: its secret stops working at once; the objects it shared stay.

    Example: distillguard hub member remove --data-dir ./hub acme-ai
    """
    with _hub(data_dir, db_url) as store:
        store.remove_member(name)
    err.print(f"removed member {escape(name)}")


# collections ----------------------------------------------------------------------------------------
@collection_app.command("create")
def collection_create(
    name: Annotated[str, typer.Argument(help="The collection's alias, used in these commands.")],
    title: Annotated[str | None, typer.Option(help="Its title (default: the name).")] = None,
    description: Annotated[str | None, typer.Option(help="What is shared in it.")] = None,
    api_root: Annotated[str, typer.Option("--api-root", help="The API root it belongs to.")] = "api",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
    as_json: AsJson = False,
) -> None:
    """Create a collection (its id, a UUID, is printed); members see it once granted a right on it.

    Example: distillguard hub collection create --data-dir ./hub campaigns --title "Distillation campaigns"
    """
    with _hub(data_dir, db_url) as store:
        created = store.create_collection(name, title, description, api_root)
    if as_json:
        json_out({"id": created.id, "alias": created.alias, "api_root": created.api_root, "title": created.title})
    else:
        err.print(f"collection {escape(name)} in API root {escape(api_root)}; its id:")
        print(created.id)


@collection_app.command("list")
def collection_list(data_dir: DataDir = DEFAULT_DATA_DIR, db_url: DbUrl = None, as_json: AsJson = False) -> None:
    """List collections with their object counts and members' rights.

    Example: distillguard hub collection list --data-dir ./hub
    """
    with _hub(data_dir, db_url) as store:
        collections, rights, counts = store.collections(), store.rights(), store.object_counts()
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "api_root": c.api_root,
            "alias": c.alias,
            "title": c.title,
            "description": c.description,
            "objects": counts.get(c.id, 0),
            "rights": {r.member: _rights_text(r.can_read, r.can_write) for r in rights if r.collection_id == c.id},
        }
        for c in collections
    ]
    if as_json:
        json_out(rows)
        return
    table = Table("id", "API root", "alias", "title", "objects", "members (r/w)")
    for r in rows:
        members = ", ".join(f"{m}: {v}" for m, v in r["rights"].items())
        table.add_row(
            r["id"], r["api_root"], escape(r["alias"]), escape(r["title"]), str(r["objects"]), escape(members)
        )
    out.print(table)


# rights ---------------------------------------------------------------------------------------------
Read = Annotated[bool, typer.Option("--read", help="The right to get objects.")]
Write = Annotated[bool, typer.Option("--write", help="The right to add (and, with --read, delete) objects.")]


@hub_app.command()
def grant(
    member: str,
    collection: Annotated[str, typer.Argument(help="The collection's alias or id.")],
    read: Read = False,
    write: Write = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
) -> None:
    """Give a member read and/or write on a collection (added to what it has).

    Example: distillguard hub grant --data-dir ./hub acme-ai campaigns --read --write
    """
    with _hub(data_dir, db_url) as store:
        right = store.grant(member, collection, read, write)
    err.print(f"{escape(member)} on {escape(collection)}: {_rights_text(right.can_read, right.can_write)}")


@hub_app.command()
def revoke(
    member: str,
    collection: Annotated[str, typer.Argument(help="The collection's alias or id.")],
    read: Annotated[bool, typer.Option("--read", help="Take only the right to read.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Take only the right to write.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
) -> None:
    """Take a member's rights on a collection (all of them unless --read or --write); with none left, the
    collection disappears from its view.

    Example: distillguard hub revoke --data-dir ./hub acme-ai campaigns
    """
    everything = not (read or write)
    with _hub(data_dir, db_url) as store:
        right = store.revoke(member, collection, read or everything, write or everything)
    left = _rights_text(right.can_read, right.can_write) or "no rights (out of the collection)"
    err.print(f"{escape(member)} on {escape(collection)}: {left}")


# API roots ------------------------------------------------------------------------------------------
@root_app.command("add")
def root_add(
    name: Annotated[str, typer.Argument(help="The API root's name: it is served at /taxii2/<name>/.")],
    title: Annotated[str | None, typer.Option(help="Its title (default: the name).")] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db_url: DbUrl = None,
) -> None:
    """Add an API root (a separate group of collections, listed in the discovery document).

    Example: distillguard hub root add --data-dir ./hub research --title "Research group"
    """
    with _hub(data_dir, db_url) as store:
        store.add_api_root(name, title or name, description)
    err.print(f"API root {escape(name)} at /taxii2/{escape(name)}/")


@root_app.command("list")
def root_list(data_dir: DataDir = DEFAULT_DATA_DIR, db_url: DbUrl = None, as_json: AsJson = False) -> None:
    """List API roots.

    Example: distillguard hub root list --data-dir ./hub
    """
    with _hub(data_dir, db_url) as store:
        roots = store.api_roots()
    rows: list[dict[str, Any]] = [{"name": r.name, "title": r.title, "description": r.description} for r in roots]
    if as_json:
        json_out(rows)
        return
    table = Table("name", "title", "description")
    for r in rows:
        table.add_row(escape(r["name"]), escape(r["title"]), escape(r["description"] or ""))
    out.print(table)
