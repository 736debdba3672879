"""A comparison target's own virtualenv (LiteLLM, medallion): made once under bench/, reused while its version fits.

Peers are installed apart from distillguard's environment so that their dependencies cannot change ours, and so
that the benchmark measures the release a user would install.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or started; the message says why."""


def installed_version(venv: Path, distribution: str) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_venv(
    venv: Path, distribution: str, requirement: str, version: str, log_path: Path, timeout_s: float
) -> None:
    """Create ``venv`` and ``pip install requirement`` into it unless ``distribution`` is there at ``version``;
    each step's output goes to ``log_path``. Raises :class:`PeerUnavailable` with pip's last errors."""
    if installed_version(venv, distribution) == version:
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pip = str(venv / "bin" / "pip")
    steps = [
        ["python3", "-m", "venv", str(venv)],
        [pip, "install", "--quiet", "--upgrade", "pip"],
        [pip, "install", "--quiet", requirement],
    ]
    with log_path.open("ab") as log:
        for argv in steps:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PeerUnavailable(f"`{' '.join(argv)}` failed: {exc}") from exc
            if done.returncode != 0:
                raise PeerUnavailable(f"`{' '.join(argv)}` exited with {done.returncode}: {pip_errors(log_path)}")
    got = installed_version(venv, distribution)
    if got != version:
        raise PeerUnavailable(f"installed {distribution} reports version {got!r}, expected {version}")


def pip_errors(log_path: Path, lines: int = 3, width: int = 300) -> str:
    """The last pip ERROR lines of the install log, shortened (pip lists every known version in them)."""
    text = log_path.read_text(errors="replace").splitlines()
    errors = [line for line in text if line.startswith("ERROR")] or text
    return " | ".join(line if len(line) <= width else line[:width] + "..." for line in errors[-lines:])
