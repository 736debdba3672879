"""The deployment secret: the HMAC key under which API keys are hashed.

It comes from configuration (``secret`` / ``DISTILLGUARD_SECRET``) or, when unset, from ``data_dir/secret.key``,
created on first use with mode 0600. Losing it invalidates every issued key, so back it up with the data dir.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "secret.key"


def load_or_create_secret(data_dir: Path, configured: str | None = None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    # O_EXCL: if two processes race to create it, one wins and the other reads the winner's secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
