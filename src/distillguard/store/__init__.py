"""State: API keys and accounts (SQLite embedded; any SQLAlchemy URL)."""

from distillguard.store.models import Account, ApiKey
from distillguard.store.state import StateStore, open_store

__all__ = ["Account", "ApiKey", "StateStore", "open_store"]
