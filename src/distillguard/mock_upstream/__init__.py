"""A fast, deterministic OpenAI-compatible server for the demo, tests and benchmarks (never for production)."""

from distillguard.mock_upstream.server import MockUpstream, build_mock_app

__all__ = ["MockUpstream", "build_mock_app"]
