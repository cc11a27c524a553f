"""The `serve` command: run the REST API (and what is mounted beside it) with uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cortex.cli.options import Home
from cortex.config import Settings
from cortex.errors import ConfigError

__all__ = ["serve"]


def serve(
    home: Home = None,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDR", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8420,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    log_level: Annotated[
        str, typer.Option("--log-level", metavar="LEVEL", help="uvicorn log level.")
    ] = "info",
) -> None:
    """Run the CORTEX REST API on HOST:PORT until interrupted (Ctrl-C stops it cleanly).

    Every /v1 route needs `Authorization: Bearer <key>` (make one with `cortex keys create`);
    /health and /ready need none. OpenAPI at /openapi.json, docs at /docs, Prometheus metrics at
    /metrics (admin key). Settings come from --home, CORTEX_* variables and cortex.toml; with
    --workers N each process opens the same data directory.

    Examples:

        cortex serve --home /srv/cortex --port 8420
        curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8420/v1/facts   # then
    """
    import uvicorn

    from cortex.api.app import create_app
    from cortex.api.keys import load_server_secret
    from cortex.search.vectors import use_one_blas_thread

    settings = Settings.load(home)
    if not settings.database_path.exists():
        raise ConfigError(
            f"{settings.home} is not an initialised CORTEX data directory;"
            f" run `cortex init --home {settings.home}` first"
        )
    load_server_secret(settings.server_secret_path)
    use_one_blas_thread()
    try:
        if workers > 1:
            # Each worker builds its own app (and engine) from the same environment.
            os.environ["CORTEX_HOME"] = str(settings.home)
            uvicorn.run(
                "cortex.api.app:create_app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
            )
            return
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
        app.state.metrics.track_connections(lambda: len(server.server_state.connections))
        server.run()
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C once it has shut down gracefully: a normal end here.
        typer.echo("stopped", err=True)
