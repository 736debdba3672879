"""The hub's store: members and their secrets, API roots, collections and rights, objects and status resources.

One SQLAlchemy engine on any URL (default: SQLite in the hub's data dir, WAL). A member's secret is kept only as
HMAC-SHA256 under the hub's own secret (``secret.key`` in the data dir), like the gateway's API keys.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from distillguard.intel.hub import schema as t
from distillguard.intel.hub import selection
from distillguard.intel.hub.query import Query
from distillguard.intel.hub.stamps import format_stamp
from distillguard.store import keys as keyfmt
from distillguard.store.secret import load_or_create_secret
from distillguard.store.state import sqlite_pragmas
from distillguard.timefmt import epoch_us, utcnow

if TYPE_CHECKING:
    from distillguard.intel.hub.admission import Incoming

HUB_DB = "hub.db"
SECRET_PREFIX = "dg-hub-"
DEFAULT_ROOT = "api"
DEFAULT_ROOT_TITLE = "distillguard hub"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Rows per IN (...) list: well under SQLite's limit on bound parameters.
_CHUNK = 500


# Statements of the request path, built once (see selection.py for why).
_CREDENTIALS = select(t.members.c.name, t.members.c.secret_hash).where(t.members.c.key_id == bindparam("key_id"))
_ACCESS = (
    select(t.collections, t.rights.c.can_read, t.rights.c.can_write)
    .join(t.rights, t.rights.c.collection_id == t.collections.c.id)
    .where(t.rights.c.member == bindparam("member"), t.collections.c.api_root == bindparam("api_root"))
)
_ACCESS_ONE = _ACCESS.where(t.collections.c.id == bindparam("collection_id"))
_ACCESS_ALL = _ACCESS.order_by(t.collections.c.alias)
_HAS_OBJECT = (
    select(t.objects.c.seq)
    .where(t.objects.c.collection_id == bindparam("collection_id"), t.objects.c.object_id == bindparam("object_id"))
    .limit(1)
)


class HubError(Exception):
    """An administrative request that cannot be done: an unknown or duplicate name, a malformed one."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    key_id: str
    created_us: int


@dataclass(frozen=True, slots=True)
class ApiRoot:
    name: str
    title: str
    description: str | None


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    api_root: str
    alias: str
    title: str
    description: str | None
    created_us: int


@dataclass(frozen=True, slots=True)
class Access:
    """A collection as one member sees it."""

    collection: Collection
    can_read: bool
    can_write: bool


@dataclass(frozen=True, slots=True)
class Right:
    member: str
    collection_id: str
    can_read: bool
    can_write: bool


@dataclass(frozen=True, slots=True)
class Record:
    """One stored version of an object (``body``, its JSON, is empty where the endpoint does not serve it)."""

    object_id: str
    version: str
    spec_version: str
    date_added_us: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Record]
    more: bool


@dataclass(frozen=True, slots=True)
class Added:
    """The outcome of one admitted object: its version, and whether it was new (else it was there already)."""

    object_id: str
    version: str
    new: bool
    # Why it was refused: another member shared this object id first, and only that member adds versions of it.
    refused: str | None = None


def _checked_name(kind: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise HubError(f"{kind} name {name[:80]!r} must be 1 to 64 letters, digits, '.', '_' or '-', starting alnum")
    return name


def _collection(row: Any) -> Collection:
    m = row._mapping
    return Collection(m["id"], m["api_root"], m["alias"], m["title"], m["description"], m["created_us"])


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class HubStore:
    def __init__(self, engine: Engine, secret: bytes) -> None:
        self._engine = engine
        self._secret = secret
        t.metadata.create_all(engine)
        if self.api_root(DEFAULT_ROOT) is None:
            with contextlib.suppress(HubError):  # another process created it at the same moment
                self.add_api_root(DEFAULT_ROOT, DEFAULT_ROOT_TITLE)

    # members ----------------------------------------------------------------------------------------
    def add_member(self, name: str) -> tuple[Member, str]:
        """A new member and its secret; the secret is returned once and only its keyed hash is kept."""
        _checked_name("member", name)
        key_id, secret = keyfmt.new_key(SECRET_PREFIX)
        member = Member(name, key_id, epoch_us(utcnow()))
        values = {"key_id": key_id, "secret_hash": keyfmt.hash_key(self._secret, secret)}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(t.members).values(name=name, created_us=member.created_us, **values))
        except IntegrityError:
            raise HubError(f"member {name!r} exists already") from None
        return member, secret

    def remove_member(self, name: str) -> None:
        """Remove a member with its rights and status resources (the objects it shared stay)."""
        with self._engine.begin() as conn:
            conn.execute(delete(t.rights).where(t.rights.c.member == name))
            conn.execute(delete(t.statuses).where(t.statuses.c.member == name))
            if conn.execute(delete(t.members).where(t.members.c.name == name)).rowcount == 0:
                raise HubError(f"no member {name!r}")

    def members(self) -> list[Member]:
        query = select(t.members.c.name, t.members.c.key_id, t.members.c.created_us).order_by(t.members.c.name)
        with self._engine.connect() as conn:
            return [Member(*row) for row in conn.execute(query)]

    def authenticate(self, name: str | None, secret: str) -> str | None:
        """The member whose secret this is (and whose name is ``name``, when given), or None."""
        key_id = keyfmt.key_id_of(secret, SECRET_PREFIX)
        if key_id is None:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(_CREDENTIALS, {"key_id": key_id}).first()
        if row is None or (name is not None and row.name != name):
            return None
        return str(row.name) if keyfmt.key_matches(self._secret, secret, row.secret_hash) else None

    # API roots and collections ----------------------------------------------------------------------
    def add_api_root(self, name: str, title: str, description: str | None = None) -> ApiRoot:
        _checked_name("API root", name)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(t.api_roots).values(name=name, title=title, description=description))
        except IntegrityError:
            raise HubError(f"API root {name!r} exists already") from None
        return ApiRoot(name, title, description)

    def api_roots(self) -> list[ApiRoot]:
        with self._engine.connect() as conn:
            return [ApiRoot(*row) for row in conn.execute(select(t.api_roots).order_by(t.api_roots.c.name))]

    def api_root(self, name: str) -> ApiRoot | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(t.api_roots).where(t.api_roots.c.name == name)).first()
        return ApiRoot(*row) if row else None

    def create_collection(
        self, alias: str, title: str | None = None, description: str | None = None, api_root: str = DEFAULT_ROOT
    ) -> Collection:
        """A new collection (its id a random UUID) in ``api_root``; ``alias`` names it in commands."""
        _checked_name("collection", alias)
        if self.api_root(api_root) is None:
            raise HubError(f"no API root {api_root!r}")
        now = epoch_us(utcnow())
        collection = Collection(str(uuid.uuid4()), api_root, alias, title or alias, description, now)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(t.collections).values(
                        id=collection.id,
                        api_root=api_root,
                        alias=alias,
                        title=collection.title,
                        description=description,
                        created_us=now,
                        last_added_us=0,
                    )
                )
        except IntegrityError:
            raise HubError(f"API root {api_root!r} has a collection {alias!r} already") from None
        return collection

    def collections(self) -> list[Collection]:
        query = select(t.collections).order_by(t.collections.c.api_root, t.collections.c.alias)
        with self._engine.connect() as conn:
            return [_collection(row) for row in conn.execute(query)]

    def find_collection(self, ref: str) -> Collection:
        """The collection with this id, or else with this alias (unique across API roots)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.collections).where(t.collections.c.id == ref)).all()
            if not rows:
                rows = conn.execute(select(t.collections).where(t.collections.c.alias == ref)).all()
        if not rows:
            raise HubError(f"no collection {ref!r} (give its id or alias; `hub collection list` shows them)")
        if len(rows) > 1:
            raise HubError(f"several API roots have a collection {ref!r}: give its id")
        return _collection(rows[0])

    def object_counts(self) -> dict[str, int]:
        """Stored object versions per collection id."""
        query = select(t.objects.c.collection_id, func.count()).group_by(t.objects.c.collection_id)
        with self._engine.connect() as conn:
            return {cid: int(n) for cid, n in conn.execute(query)}

    # rights -----------------------------------------------------------------------------------------
    def grant(self, member: str, collection_ref: str, read: bool, write: bool) -> Right:
        """Add read and/or write on a collection to what the member has."""
        if not (read or write):
            raise HubError("grant what? give --read, --write or both")
        collection = self.find_collection(collection_ref)
        with self._engine.begin() as conn:
            if conn.execute(select(t.members.c.name).where(t.members.c.name == member)).first() is None:
                raise HubError(f"no member {member!r}")
            key = (t.rights.c.member == member) & (t.rights.c.collection_id == collection.id)
            row = conn.execute(select(t.rights.c.can_read, t.rights.c.can_write).where(key)).first()
            if row is None:
                right = Right(member, collection.id, read, write)
                conn.execute(
                    insert(t.rights).values(member=member, collection_id=collection.id, can_read=read, can_write=write)
                )
            else:
                right = Right(member, collection.id, read or bool(row.can_read), write or bool(row.can_write))
                conn.execute(update(t.rights).where(key).values(can_read=right.can_read, can_write=right.can_write))
        return right

    def revoke(self, member: str, collection_ref: str, read: bool = True, write: bool = True) -> Right:
        """Take read and/or write on a collection from a member; with neither left, the member is out of it."""
        collection = self.find_collection(collection_ref)
        key = (t.rights.c.member == member) & (t.rights.c.collection_id == collection.id)
        with self._engine.begin() as conn:
            row = conn.execute(select(t.rights.c.can_read, t.rights.c.can_write).where(key)).first()
            if row is None:
                raise HubError(f"member {member!r} has no rights on collection {collection.alias!r}")
            right = Right(member, collection.id, bool(row.can_read) and not read, bool(row.can_write) and not write)
            if right.can_read or right.can_write:
                conn.execute(update(t.rights).where(key).values(can_read=right.can_read, can_write=right.can_write))
            else:
                conn.execute(delete(t.rights).where(key))
        return right

    def rights(self) -> list[Right]:
        query = select(t.rights).order_by(t.rights.c.collection_id, t.rights.c.member)
        with self._engine.connect() as conn:
            return [Right(r.member, r.collection_id, bool(r.can_read), bool(r.can_write)) for r in conn.execute(query)]

    def access(self, member: str, api_root: str, collection_id: str) -> Access | None:
        """The collection as ``member`` sees it; None if it does not exist or the member is not in it."""
        with self._engine.connect() as conn:
            row = conn.execute(
                _ACCESS_ONE, {"member": member, "api_root": api_root, "collection_id": collection_id}
            ).first()
        return Access(_collection(row), bool(row.can_read), bool(row.can_write)) if row else None

    def accessible(self, member: str, api_root: str) -> list[Access]:
        """The collections of ``api_root`` that ``member`` is in (with any right)."""
        with self._engine.connect() as conn:
            rows = conn.execute(_ACCESS_ALL, {"member": member, "api_root": api_root})
            return [Access(_collection(r), bool(r.can_read), bool(r.can_write)) for r in rows]

    # objects ----------------------------------------------------------------------------------------
    def add_objects(self, collection_id: str, member: str, incoming: Sequence[Incoming]) -> list[Added]:
        """Store the objects that are not there yet, each with its own, strictly increasing date_added."""
        c, o = t.collections, t.objects
        with self._engine.begin() as conn:
            # Taking the collection's row first serialises writers (see schema.collections.last_added_us).
            conn.execute(update(c).where(c.c.id == collection_id).values(last_added_us=c.c.last_added_us))
            last = conn.execute(select(c.c.last_added_us).where(c.c.id == collection_id)).scalar_one()
            known, owners = self._versions_known(conn, collection_id, list({i.object_id: None for i in incoming}))
            clock = max(epoch_us(utcnow()), last + 1)
            rows: list[dict[str, Any]] = []
            out: list[Added] = []
            for item in incoming:
                versions = known.setdefault(item.object_id, {})
                if item.version_us is None and versions:
                    # Unversioned objects (most cyber-observables) are immutable: one copy per id.
                    out.append(Added(item.object_id, next(iter(versions.values())), False))
                    continue
                if item.version_us is not None and item.version_us in versions:
                    out.append(Added(item.object_id, versions[item.version_us], False))
                    continue
                if owners.setdefault(item.object_id, member) != member:
                    # A member may not add versions of another's object: a newer forged version would shadow the
                    # genuine one for every reader that asks only for the last version (the TAXII default).
                    message = f"{item.object_id} was first shared by another member; only that member adds versions"
                    out.append(Added(item.object_id, item.version or "", False, message))
                    continue
                version = item.version or format_stamp(clock)
                version_us = clock if item.version_us is None else item.version_us
                versions[version_us] = version
                rows.append(
                    {
                        "collection_id": collection_id,
                        "object_id": item.object_id,
                        "type": item.type,
                        "spec_version": item.spec_version,
                        "version": version,
                        "version_us": version_us,
                        "date_added_us": clock,
                        "added_by": member,
                        "body": item.body,
                    }
                )
                out.append(Added(item.object_id, version, True))
                clock += 1
            if rows:
                conn.execute(insert(o), rows)
                conn.execute(update(c).where(c.c.id == collection_id).values(last_added_us=clock - 1))
        return out

    @staticmethod
    def _versions_known(
        conn: Connection, collection_id: str, ids: Sequence[str]
    ) -> tuple[dict[str, dict[int, str]], dict[str, str]]:
        """The versions held of each id, and the member that shared each id first."""
        o = t.objects
        known: dict[str, dict[int, str]] = {}
        owners: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(ids):
            query = select(o.c.object_id, o.c.version_us, o.c.version, o.c.date_added_us, o.c.added_by).where(
                o.c.collection_id == collection_id, o.c.object_id.in_(chunk)
            )
            for object_id, version_us, version, added_us, added_by in conn.execute(query):
                known.setdefault(object_id, {})[version_us] = version
                if object_id not in owners or added_us < owners[object_id][0]:
                    owners[object_id] = (added_us, added_by)
        return known, {i: by for i, (_, by) in owners.items()}

    def objects(self, collection_id: str, query: Query, object_id: str | None = None) -> Page:
        """A page of objects (with their JSON), oldest date_added first; of one object's versions with
        ``object_id``."""
        return self._page(collection_id, query, with_body=True, object_id=object_id)

    def manifest(self, collection_id: str, query: Query) -> Page:
        """A page of manifest records: the same selection as ``objects``, without the JSON."""
        return self._page(collection_id, query, with_body=False)

    def versions(self, collection_id: str, object_id: str, query: Query) -> Page:
        """A page of the versions of one object (``query`` should select all versions)."""
        return self._page(collection_id, query, with_body=False, object_id=object_id)

    def has_object(self, collection_id: str, object_id: str) -> bool:
        with self._engine.connect() as conn:
            return (
                conn.execute(_HAS_OBJECT, {"collection_id": collection_id, "object_id": object_id}).first() is not None
            )

    def delete_object(self, collection_id: str, object_id: str, query: Query) -> int:
        """Delete the versions of an object that ``query`` selects; returns how many went."""
        selected = selection.statement(selection.shape(query, "seq", one_object=True))
        with self._engine.begin() as conn:
            seqs = [row.seq for row in conn.execute(selected, selection.parameters(collection_id, query, object_id))]
            for start in range(0, len(seqs), _CHUNK):
                conn.execute(delete(t.objects).where(t.objects.c.seq.in_(seqs[start : start + _CHUNK])))
        return len(seqs)

    def _page(self, collection_id: str, query: Query, with_body: bool, object_id: str | None = None) -> Page:
        of = selection.shape(query, "objects" if with_body else "records", one_object=object_id is not None)
        with self._engine.connect() as conn:
            rows = conn.execute(selection.statement(of), selection.parameters(collection_id, query, object_id)).all()
        return Page([Record(*row) for row in rows[: query.limit]], more=len(rows) > query.limit)

    # status resources -------------------------------------------------------------------------------
    def save_status(self, status_id: str, api_root: str, member: str, body: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(t.statuses).values(
                    id=status_id, api_root=api_root, member=member, created_us=epoch_us(utcnow()), body=body
                )
            )

    def status(self, api_root: str, status_id: str, member: str) -> str | None:
        """A status resource's JSON, if ``member`` made it (others are told it does not exist)."""
        s = t.statuses
        query = select(s.c.body).where(s.c.id == status_id, s.c.api_root == api_root, s.c.member == member)
        with self._engine.connect() as conn:
            body = conn.execute(query).scalar()
        return str(body) if body is not None else None

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()


def open_hub_store(data_dir: Path, url: str | None = None, secret: str | None = None) -> HubStore:
    """Open the hub's store named by ``url`` (default: SQLite at ``data_dir/hub.db``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url or f"sqlite:///{data_dir / HUB_DB}")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return HubStore(engine, load_or_create_secret(data_dir, secret))
