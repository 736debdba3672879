"""The modules setup.py compiles with mypyc (the watermark's hot path), and what to load when a build is stale.

A compiled module sits next to its source (``text.cpython-311-x86_64-linux-gnu.so`` beside ``text.py``) and Python
imports it first. After an edit of the source the build no longer matches it: until it is rebuilt (``make native``)
the source is loaded instead, with a warning, so an edit always takes effect. ``DISTILLGUARD_PURE=1`` at run time
loads the sources too (tests compare the two).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# In dependency order: each imports only those before it (and modules that are never compiled).
COMPILED = (
    "distillguard.watermark.lexicon",
    "distillguard.watermark.text",
    "distillguard.watermark.stream",
    "distillguard.gateway.sse",
)
_ROOT = Path(__file__).resolve().parent.parent


def source(name: str) -> Path:
    return _ROOT.joinpath(*name.split(".")).with_suffix(".py")


def _extension(base: Path) -> Path | None:
    """The extension module ``base`` + a suffix this interpreter loads, if there is one."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def build(name: str) -> Path | None:
    """The compiled module beside the source, if there is one (a shim: the code is in :func:`library`)."""
    return _extension(source(name).with_suffix(""))


def library() -> Path | None:
    """The shared library that holds the compiled code of every module (setup.py's ``group_name``)."""
    return _extension(_ROOT / "distillguard" / "_native__mypyc")


def stale() -> list[str]:
    """Compiled modules whose source changed after the build (``make native`` touches the library when done)."""
    lib = library()
    if lib is None:
        return []
    built = lib.stat().st_mtime
    return [name for name in COMPILED if build(name) is not None and source(name).stat().st_mtime > built]


def compiled() -> bool:
    """Whether the watermark's hot path runs compiled."""
    import distillguard.watermark.text as text

    return not str(text.__file__).endswith(".py")


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' Python sources, ahead of the path finder that would find the build."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, source(fullname))


def prefer_sources() -> None:
    """From now on, the compiled modules are imported from their Python sources."""
    if not any(isinstance(finder, _Sources) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Sources())


def choose() -> None:
    """At ``import distillguard``: the sources instead of a stale build, or when asked for."""
    if any(name in sys.modules for name in COMPILED):
        return
    if os.environ.get("DISTILLGUARD_PURE"):
        prefer_sources()
        return
    behind = stale()
    if behind:
        warnings.warn(
            f"compiled {', '.join(behind)} older than the source: running the Python source (slower); "
            "`make native` rebuilds",
            RuntimeWarning,
            stacklevel=2,
        )
        prefer_sources()


if __name__ == "__main__":  # the sources, for setup.py and the Makefile
    print(" ".join(str(source(name).relative_to(_ROOT.parent)) for name in COMPILED))
