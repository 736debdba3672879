"""Run the gateway under uvicorn (uvloop event loop, httptools parser)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from distillguard.config import Settings
from distillguard.gateway.app import Gateway, GatewayApp, build_app
from distillguard.logs import configure_logging

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight calls finish and every queued event is written before exit.

    With ``server.workers`` > 1, N processes share the listening socket (uvicorn's supervisor: it binds once, starts
    the workers, restarts one that dies, and on SIGTERM stops them all gracefully). Each worker builds its own
    gateway, with its own event loop, pools and store connections.
    """
    configure_logging(settings.logging.level, settings.logging.format)
    if not settings.upstreams:
        raise SystemExit("no upstream configured: pass --upstream URL (or 'mock'), or add [[upstreams]] to the config")
    workers = settings.server.workers
    problem = workers_problem(settings)
    if problem is not None:
        raise SystemExit(problem)
    log.info("listening", extra={"host": settings.server.host, "port": settings.server.port, "workers": workers})
    if workers > 1 and settings.detect.enabled and not settings.detect.state_url:
        log.warning(
            "each worker scores only the calls it serves: set [detect] state_url to a Redis URL for one state per "
            "account across the workers",
            extra={"workers": workers},
        )
    if workers == 1:
        uvicorn.Server(_uvicorn_config(build_app(Gateway(settings)), settings)).run()
        return
    # The app travels to the spawned workers as a picklable factory; each one builds its gateway after the spawn.
    config = _uvicorn_config(functools.partial(worker_app, settings), settings, factory=True, workers=workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def workers_problem(settings: Settings) -> str | None:
    """Why ``settings`` cannot run with its number of workers, or None."""
    workers = settings.server.workers
    if workers > 1 and settings.limits.storage_uri.startswith("memory://"):
        return (
            f"--workers {workers} needs rate limits shared by the worker processes: with [limits] storage_uri = "
            f'"memory://" each process would count on its own and admit up to {workers}x the limits. Set '
            '[limits] storage_uri = "redis://HOST:6379/0" (or DISTILLGUARD_LIMITS__STORAGE_URI), or run one worker.'
        )
    return None


def worker_app(settings: Settings) -> GatewayApp:
    """The app of one worker process (called in the worker, after the spawn)."""
    configure_logging(settings.logging.level, settings.logging.format)
    return build_app(Gateway(settings))


def _uvicorn_config(app: Any, settings: Settings, factory: bool = False, workers: int = 1) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        factory=factory,
        workers=workers,
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
