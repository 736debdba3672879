"""How a hub presents itself and what it accepts: the settings of `distillguard hub serve`."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 9400
DEFAULT_TITLE = "distillguard hub"
# 10 MiB: an envelope of several thousand indicators; advertised as max_content_length in every API root.
DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
# Objects per page at most (a larger `limit` is served this many, as TAXII allows).
DEFAULT_MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class HubConfig:
    title: str = DEFAULT_TITLE
    description: str | None = "Indicators of model-distillation campaigns, shared between LLM-API providers."
    contact: str | None = None
    # The hub's public base URL (https://hub.example.org), for the API root URLs in the discovery document;
    # without it they are built from the request (wrong behind a proxy that rewrites the host).
    public_url: str | None = None
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    max_page: int = DEFAULT_MAX_PAGE
