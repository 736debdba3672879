"""OASIS's reference TAXII 2.1 server, medallion, as a comparison target: its own virtualenv, a configuration with
its in-memory backend, its command line (medallion's own server: Flask's, threaded)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from peer_venv import PeerUnavailable, ensure_venv

MEDALLION_VERSION = "3.0.0"
USER, PASSWORD = "bench", "bench-password"
API_ROOT = "api"
INSTALL_TIMEOUT_S = 600

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-medallion"


MedallionUnavailable = PeerUnavailable


@dataclass(frozen=True)
class MedallionInstall:
    venv: Path
    version: str

    @property
    def cli(self) -> Path:
        return self.venv / "bin" / "medallion"


def ensure_installed(log_path: Path, venv: Path = VENV_DIR, version: str = MEDALLION_VERSION) -> MedallionInstall:
    """Create ``venv`` and install ``medallion==version`` into it, unless that is already there."""
    ensure_venv(venv, "medallion", f"medallion=={version}", version, log_path, INSTALL_TIMEOUT_S)
    return MedallionInstall(venv, version)


def write_config(run_dir: Path, port: int, collection_id: str, max_page: int, max_content_length: int) -> Path:
    """A medallion configuration: one user, one API root with one empty collection, the in-memory backend."""
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {
            "title": "medallion (benchmark)",
            "default": f"{base}/{API_ROOT}/",
            "api_roots": [f"{base}/{API_ROOT}/"],
        },
        API_ROOT: {
            "information": {
                "title": "benchmark",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": max_content_length,
            },
            "status": [],
            "collections": [
                {
                    "id": collection_id,
                    "title": "benchmark",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    data_file = run_dir / "medallion-data.json"
    data_file.write_text(json.dumps(data))
    config = {
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": max_page},
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
        },
    }
    path = run_dir / "medallion.json"
    path.write_text(json.dumps(config))
    return path


def command(install: MedallionInstall, config: Path, port: int) -> list[str]:
    return [str(install.cli), "--host", "127.0.0.1", "--port", str(port), "--log-level", "ERROR", str(config)]


if __name__ == "__main__":  # pragma: no cover - manual use: install only
    print(ensure_installed(BENCH_DIR / ".run" / "medallion-install.log"), file=sys.stderr)
