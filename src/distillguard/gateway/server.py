"""Run the gateway under uvicorn (uvloop event loop, httptools parser)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn

from distillguard.config import Settings
from distillguard.gateway.app import Gateway, build_app
from distillguard.logs import configure_logging

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight calls finish and every queued event is written before exit."""
    configure_logging(settings.logging.level, settings.logging.format)
    if not settings.upstreams:
        raise SystemExit("no upstream configured: pass --upstream URL (or 'mock'), or add [[upstreams]] to the config")
    gateway = Gateway(settings)
    config = uvicorn.Config(
        build_app(gateway),
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        # X-Forwarded-For is resolved by the gateway's own trusted-proxy rule (server.trusted_proxies).
        proxy_headers=False,
        date_header=False,
        backlog=4096,
        timeout_graceful_shutdown=int(settings.server.graceful_shutdown_s),
    )
    log.info("listening", extra={"host": settings.server.host, "port": settings.server.port})
    uvicorn.Server(config).run()


@contextlib.asynccontextmanager
async def serving_in_process(gateway: Gateway, port: int, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``gateway`` on the running event loop (the demo, benchmarks); yields its base URL once it listens, and
    stops it (lifespan shutdown: events flushed) on exit."""
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(gateway),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises the reason it could not start
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
