"""distillguard: a self-hostable defence for OpenAI-compatible LLM APIs against model extraction."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distillguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

from distillguard.native import choose as _choose_native

_choose_native()
