"""The state store: accounts and API keys behind one interface, on SQLite (embedded) or PostgreSQL (shared).

Both are reached through one SQLAlchemy URL (``store_url``) and migrated to the same schema (``migrate.py``); the code
above the store does not know which it is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import Row, make_url

from distillguard.store import keys as keyfmt
from distillguard.store.migrate import SQLITE_BUSY_MS, upgrade
from distillguard.store.models import Account, ApiKey
from distillguard.store.schema import accounts, api_keys
from distillguard.store.secret import load_or_create_secret
from distillguard.timefmt import as_utc, utcnow

STATE_DB = "state.db"
_JOINED = "account__"
_ACCOUNT_FIELDS = (
    "org_id",
    "tier",
    "created_at",
    "verified",
    "payment_fingerprint",
    "email_domain",
    "country",
    "limits_override",
)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key: ApiKey
    account: Account
    key_hash: str


class NotFoundError(LookupError):
    """A named account or key does not exist."""


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything in the store is UTC.
    return as_utc(value) if value is not None else None


def _account(row: Row[Any], prefix: str = "") -> Account:
    m = row._mapping
    return Account(
        account_id=m[prefix + "account_id"],
        org_id=m[prefix + "org_id"],
        tier=m[prefix + "tier"],
        created_at=_aware(m[prefix + "created_at"]),
        verified=bool(m[prefix + "verified"]),
        payment_fingerprint=m[prefix + "payment_fingerprint"],
        email_domain=m[prefix + "email_domain"],
        country=m[prefix + "country"],
        limits_override=m[prefix + "limits_override"],
    )


def _api_key(row: Row[Any]) -> ApiKey:
    m = row._mapping
    created = _aware(m["created_at"])
    assert created is not None
    return ApiKey(
        key_id=m["key_id"],
        account_id=m["account_id"],
        name=m["name"],
        created_at=created,
        revoked_at=_aware(m["revoked_at"]),
    )


class StateStore:
    """Accounts and keys. Keys are stored only as HMAC-SHA256 under the deployment secret.

    Opening the store brings its database to the schema this code expects (creating it, or adopting one made before
    there were migrations), so every table of ``schema.py`` is there for the other users of :attr:`engine`."""

    def __init__(self, engine: Engine, secret: bytes) -> None:
        self._engine = engine
        self._secret = secret
        upgrade(engine)

    # accounts ---------------------------------------------------------------------------------------
    def upsert_account(self, account_id: str, **fields: Any) -> Account:
        """Create the account, or update the given fields of an existing one (``None`` leaves a field as is)."""
        unknown = set(fields) - set(_ACCOUNT_FIELDS)
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")
        if not account_id or len(account_id) > 200:
            raise ValueError("account_id must be 1 to 200 characters")
        # Times are written in UTC: SQLite keeps a datetime's wall clock and drops its offset, so any other zone
        # would come back as a different instant (PostgreSQL would keep it; the two must agree).
        values = {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in fields.items() if v is not None}
        with self._engine.begin() as conn:
            existing = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
            if existing is None:
                values.setdefault("created_at", utcnow())
                values.setdefault("verified", False)
                conn.execute(accounts.insert().values(account_id=account_id, **values))
            elif values:
                conn.execute(update(accounts).where(accounts.c.account_id == account_id).values(**values))
            row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).one()
        return _account(row)

    def get_account(self, account_id: str) -> Account | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
        return _account(row) if row else None

    def iter_accounts(self) -> Iterator[Account]:
        with self._engine.connect() as conn:
            for row in conn.execute(select(accounts).order_by(accounts.c.account_id)):
                yield _account(row)

    def import_accounts(self, records: Iterable[Account]) -> int:
        count = 0
        for acc in records:
            self.upsert_account(acc.account_id, **{f: getattr(acc, f) for f in _ACCOUNT_FIELDS})
            count += 1
        return count

    # keys -------------------------------------------------------------------------------------------
    def create_key(self, account_id: str, name: str | None = None) -> tuple[ApiKey, str]:
        """Issue a key for an existing account; returns the record and the plaintext (shown once)."""
        if self.get_account(account_id) is None:
            raise NotFoundError(f"no account {account_id!r}")
        key_id, plaintext = keyfmt.new_key()
        record = ApiKey(key_id=key_id, account_id=account_id, name=name, created_at=utcnow(), revoked_at=None)
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    account_id=account_id,
                    key_hash=keyfmt.hash_key(self._secret, plaintext),
                    name=name,
                    created_at=record.created_at,
                    revoked_at=None,
                )
            )
        return record, plaintext

    def revoke_key(self, key_id: str) -> ApiKey:
        with self._engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no key {key_id!r}")
        return _api_key(row)

    def list_keys(self, account_id: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if account_id is not None:
            query = query.where(api_keys.c.account_id == account_id)
        with self._engine.connect() as conn:
            return [_api_key(r) for r in conn.execute(query)]

    def lookup_key(self, key_id: str) -> KeyRecord | None:
        """The key (active or revoked), its stored hash and its account."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys, *(c.label(_JOINED + c.name) for c in accounts.c))
                .join(accounts, accounts.c.account_id == api_keys.c.account_id)
                .where(api_keys.c.key_id == key_id)
            ).first()
        if row is None:
            return None
        return KeyRecord(_api_key(row), _account(row, prefix=_JOINED), row._mapping["key_hash"])

    def authenticate(self, presented: str) -> tuple[ApiKey, Account] | None:
        """The active key and its account for a presented plaintext key, or None. Constant-time comparison."""
        key_id = keyfmt.key_id_of(presented)
        record = self.lookup_key(key_id) if key_id else None
        if record is None or not keyfmt.key_matches(self._secret, presented, record.key_hash):
            return None
        if not record.key.active:
            return None
        return record.key, record.account

    @property
    def engine(self) -> Engine:
        """The store's engine, for the other tables kept in the same database (respond/book.py)."""
        return self._engine

    @property
    def secret(self) -> bytes:
        return self._secret

    def close(self) -> None:
        self._engine.dispose()


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # The timeout first: switching to WAL needs the lock another process opening the same new file may hold.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def utc_session(dbapi_conn: Any, _record: Any) -> None:
    # Timestamps come back in the session's zone, which is the server's unless set: the store's are UTC everywhere.
    cursor = dbapi_conn.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_conn.commit()  # outside a committed transaction the setting would be rolled back with it


# Server databases: connections are checked before use (a restarted PostgreSQL leaves the pool holding dead ones,
# and the next call would fail on each of them), recycled hourly, and bounded per process (a gateway serves calls
# from a thread pool; a replica should not hold more than a share of the server's max_connections).
SERVER_POOL: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_recycle": 3600}


def store_engine(data_dir: Path, url: str | None = None) -> Engine:
    """The engine for ``url`` (default: SQLite at ``data_dir/state.db``), without touching the schema."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{data_dir / STATE_DB}"
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url)
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    engine = create_engine(url, **SERVER_POOL)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", utc_session)
    return engine


def open_store(data_dir: Path, url: str | None = None, secret: str | None = None) -> StateStore:
    """Open the state store named by ``url`` (default: SQLite at ``data_dir/state.db``), migrated to this code's
    schema."""
    return StateStore(store_engine(data_dir, url), load_or_create_secret(data_dir, secret))
