"""The LiteLLM proxy as a comparison target: its own virtualenv, an offline configuration, its command line."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from peer_venv import PeerUnavailable, ensure_venv

# The newest 1.x release whose `litellm[proxy]` installs from PyPI when this benchmark was written. The newest
# 1.x listed by `pip index versions litellm` was 1.110.2, but its `proxy` extra needs `litellm-proxy==1.110.2`,
# which is not published; 1.108.8 to 1.109.3 pin `litellm-enterprise` / `litellm-proxy-extras` releases that are
# not published either, so pip cannot resolve them.
LITELLM_VERSION = "1.108.7"
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
INSTALL_TIMEOUT_S = 1200

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-litellm"


LiteLLMUnavailable = PeerUnavailable


@dataclass(frozen=True)
class LiteLLMInstall:
    venv: Path
    version: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.venv / "bin" / "litellm"


def ensure_installed(log_path: Path, venv: Path = VENV_DIR, version: str = LITELLM_VERSION) -> LiteLLMInstall:
    """Create ``venv`` and install ``litellm[proxy]==version`` into it, unless that is already there."""
    ensure_venv(venv, "litellm", f"litellm[proxy]=={version}", version, log_path, INSTALL_TIMEOUT_S)
    return LiteLLMInstall(venv, version)


def write_config(path: Path, mock_base_url: str) -> Path:
    """A proxy config routing ``mock-gpt`` to the mock upstream, with nothing that reaches the internet."""
    path.write_text(
        f"""\
model_list:
  - model_name: mock-gpt
    litellm_params:
      model: openai/mock-gpt
      api_base: {mock_base_url}
      api_key: sk-dummy-upstream-key

litellm_settings:
  telemetry: false
  drop_params: true
  set_verbose: false
  json_logs: false

general_settings:
  master_key: {LITELLM_MASTER_KEY}
  disable_spend_logs: true
  disable_error_logs: true
"""
    )
    return path


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the proxy: quiet, offline (local model-cost map, no telemetry), no database."""
    env = dict(os.environ if base is None else base)
    for name in ("DATABASE_URL", "LITELLM_MASTER_KEY", "REDIS_HOST", "REDIS_URL"):
        env.pop(name, None)
    env.update(
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        DISABLE_SCHEMA_UPDATE="True",
        NO_DOCS="True",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def command(install: LiteLLMInstall, config: Path, port: int) -> list[str]:
    return [str(install.cli), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


if __name__ == "__main__":  # pragma: no cover - manual use: install only
    print(ensure_installed(BENCH_DIR / ".run" / "litellm-install.log"), file=sys.stderr)
