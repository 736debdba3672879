"""Run the hub under uvicorn (uvloop event loop, httptools parser), like the gateway."""

from __future__ import annotations

import logging

import uvicorn

from distillguard.intel.hub.app import build_app
from distillguard.intel.hub.config import HubConfig
from distillguard.intel.hub.store import HubStore
from distillguard.logs import configure_logging

log = logging.getLogger(__name__)


def serve(store: HubStore, config: HubConfig, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    configure_logging()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(store, config),
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            backlog=4096,
        )
    )
    log.info("hub listening", extra={"host": host, "port": port, "public_url": config.public_url})
    try:
        server.run()
    finally:
        store.close()
