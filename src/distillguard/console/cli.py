"""``distillguard console``: the web console alone, against a data directory (no gateway in the process).

Registered in the main CLI as ``app.command("console")(console)``. Review decisions taken here reach running
gateways at their next sync (``respond.sync_interval_s``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from distillguard.clikit import ConfigFile, DataDir, err, load


def console(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")] = 8090,
) -> None:
    """Serve the analysts' web console for a data directory (log in with `distillguard admin token create`).

    Example: distillguard console --data-dir ./dg --port 8090
    """
    import asyncio
    import contextlib
    from collections.abc import AsyncIterator

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    from distillguard.console.app import console_routes
    from distillguard.console.context import ConsoleContext
    from distillguard.console.pages.login import warm_up
    from distillguard.logs import configure_logging

    settings = load(config, data_dir)
    configure_logging(settings.logging.level, settings.logging.format)
    ctx = ConsoleContext.standalone(settings)
    path = settings.console.path.rstrip("/")

    async def home(_request: Request) -> Response:
        return RedirectResponse(f"{path}/", 307)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # A process of its own: load plotly's figure machinery now rather than on the first page (a gateway
        # serving the console does it at the first login instead, so it never pays for a console nobody opens).
        warming = asyncio.get_running_loop().run_in_executor(None, warm_up, ctx)
        try:
            yield
        finally:
            await warming
            ctx.close()

    app = Starlette(routes=[Route("/", home), *console_routes(ctx)], lifespan=lifespan)
    err.print(f"console on http://{host}:{port}{path}/ (data dir {settings.data_dir})")
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False, server_header=False)
