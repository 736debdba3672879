"""OASIS's reference TAXII 2.1 server, medallion, as a comparison target: its own virtualenv, a configuration with
its in-memory backend, its command line (medallion's own server: Flask's, threaded)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MEDALLION_VERSION = "3.0.0"
USER, PASSWORD = "bench", "bench-password"
API_ROOT = "api"
INSTALL_TIMEOUT_S = 600

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-medallion"


class MedallionUnavailable(RuntimeError):
    """medallion could not be installed or started; the message says why."""


@dataclass(frozen=True)
class MedallionInstall:
    venv: Path
    version: str

    @property
    def cli(self) -> Path:
        return self.venv / "bin" / "medallion"


def installed_version(venv: Path = VENV_DIR) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('medallion'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_installed(log_path: Path, venv: Path = VENV_DIR, version: str = MEDALLION_VERSION) -> MedallionInstall:
    """Create ``venv`` and install ``medallion==version`` into it, unless that is already there."""
    if installed_version(venv) == version:
        return MedallionInstall(venv, version)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        ["python3", "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", f"medallion=={version}"],
    ]
    with log_path.open("ab") as log:
        for argv in steps:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                done = subprocess.run(
                    argv, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise MedallionUnavailable(f"`{' '.join(argv)}` failed: {exc}") from exc
            if done.returncode != 0:
                tail = log_path.read_text(errors="replace").splitlines()[-3:]
                raise MedallionUnavailable(f"`{' '.join(argv)}` exited with {done.returncode}: {' | '.join(tail)}")
    got = installed_version(venv)
    if got != version:
        raise MedallionUnavailable(f"installed medallion reports version {got!r}, expected {version}")
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
