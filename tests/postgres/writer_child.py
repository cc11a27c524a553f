"""A CORTEX server process for the multi-writer tests: N concurrent writers on one PostgreSQL.

Usage: python -m tests.postgres.writer_child HOME URL NAME FACTS WRITERS
Prints the id of each fact as soon as its write is acknowledged, one per line (flushed), then
"done". Every fact goes to the tenant "shared".
"""

from __future__ import annotations

import asyncio
import sys

import cortex


async def main(home: str, url: str, name: str, facts: int, writers: int) -> None:
    settings = cortex.Settings.load(home, database_url=url, embedder="none", checkpoint_every=500)
    async with await cortex.open(settings) as engine:

        async def writer(number: int) -> None:
            for i in range(number, facts, writers):
                fact = await engine.store(f"fact {i} from {name}", tenant="shared", source=name)
                sys.stdout.write(f"{fact.id}\n")
                sys.stdout.flush()

        await asyncio.gather(*(writer(n) for n in range(writers)))
    sys.stdout.write("done\n")
    sys.stdout.flush()


if __name__ == "__main__":
    home, url, name, facts, writers = sys.argv[1:6]
    asyncio.run(main(home, url, name, int(facts), int(writers)))
