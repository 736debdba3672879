"""The OpenAI-compatible gateway: auth, limits, proxying, streaming and the event log."""

from distillguard.gateway.app import Gateway, build_app

__all__ = ["Gateway", "build_app"]
