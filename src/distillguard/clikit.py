"""What every command group shares: the consoles, the common options, settings loading, errors, JSON output.

The main CLI (``distillguard.cli``) and the command groups that live beside their package (``intel``, ``hub``)
import these, so that every command reads its configuration and reports errors the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from distillguard.config import ConfigError, Settings, load_settings

# Off a terminal rich would wrap tables at 80 columns; logs and CI read better unwrapped.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DataDir = Annotated[Path | None, typer.Option("--data-dir", "-d", help="State and event log directory.")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings from the file, the environment and the flags; a clear error (exit 2) when they are invalid."""
    try:
        return load_settings(config, data_dir=data_dir, **overrides)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def fail(message: str) -> typer.Exit:
    """Print an error and return the exit (code 1) for the caller to raise."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def json_out(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload).decode() + "\n")
