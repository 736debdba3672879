"""A real hub process (``python -m distillguard.intel.hub serve``, what ``distillguard hub serve`` runs) on loopback,
shared by the tests of this folder, and the store behind it for setting up members, collections and rights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distillguard.intel.hub.store import HubStore, open_hub_store
from tests.support.processes import free_port, wait_ready

MAX_CONTENT_LENGTH = 64 * 1024


@dataclass
class Hub:
    url: str
    data_dir: Path
    store: HubStore
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def discovery(self) -> str:
        return f"{self.url}/taxii2/"

    @property
    def root(self) -> str:
        return f"{self.url}/taxii2/api/"

    def member(self, name: str) -> tuple[str, str]:
        """A new member: (name, secret)."""
        _, secret = self.store.add_member(name)
        self.secrets[name] = secret
        return name, secret

    def collection(self, alias: str, **rights: str) -> str:
        """A new collection with rights {member: "r" | "w" | "rw"}; returns its id."""
        created = self.store.create_collection(alias, f"{alias} title", f"what {alias} holds")
        for member, right in rights.items():
            self.store.grant(member, created.id, "r" in right, "w" in right)
        return created.id

    def objects_url(self, collection_id: str) -> str:
        return f"{self.root}collections/{collection_id}/objects/"


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data_dir = tmp_path_factory.mktemp("hub")
    store = open_hub_store(data_dir)
    port = free_port()
    log_path = data_dir / "hub.log"
    argv = [sys.executable, "-m", "distillguard.intel.hub", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    argv += ["--max-content-length", str(MAX_CONTENT_LENGTH)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    running = Hub(f"http://127.0.0.1:{port}", data_dir, store)
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        store.close()
    # The hub must never have written a stack trace or a member's secret to its log.
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text
    assert not any(secret in text for secret in running.secrets.values())
