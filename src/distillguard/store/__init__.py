"""State: API keys and accounts (SQLite embedded; any SQLAlchemy URL).

The names below load on first use: every `distillguard` command imports ``distillguard.store.cli``, which must not
pull SQLAlchemy and Alembic in for commands that never open the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distillguard.store.models import Account, ApiKey
    from distillguard.store.state import StateStore, open_store

__all__ = ["Account", "ApiKey", "StateStore", "open_store"]
_WHERE = {"Account": "models", "ApiKey": "models", "StateStore": "state", "open_store": "state"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
