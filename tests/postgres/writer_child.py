"""A CORTEX server process for the multi-writer tests: N concurrent writers on one PostgreSQL.

Usage: python -m tests.postgres.writer_child HOME URL NAME FACTS WRITERS [BATCH]
Prints the id of each fact as soon as its write is acknowledged, one per line (flushed), then
"done". Every fact goes to the tenant "shared". With BATCH > 1, each writer stores its facts
with `store_many`, BATCH at a time (default 1: `store`, one at a time).
"""

from __future__ import annotations

import asyncio
import sys

import cortex


async def main(home: str, url: str, name: str, facts: int, writers: int, batch: int) -> None:
    settings = cortex.Settings.load(home, database_url=url, embedder="none", checkpoint_every=500)
    async with await cortex.open(settings) as engine:

        async def writer(number: int) -> None:
            mine = range(number, facts, writers)
            for start in range(0, len(mine), batch):
                items = [
                    {"content": f"fact {i} from {name}", "source": name}
                    for i in mine[start : start + batch]
                ]
                if batch == 1:
                    stored = [await engine.store(**items[0], tenant="shared")]
                else:
                    stored = await engine.store_many(items, tenant="shared")
                sys.stdout.write("".join(f"{fact.id}\n" for fact in stored))
                sys.stdout.flush()

        await asyncio.gather(*(writer(n) for n in range(writers)))
    sys.stdout.write("done\n")
    sys.stdout.flush()


if __name__ == "__main__":
    home, url, name, facts, writers = sys.argv[1:6]
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    asyncio.run(main(home, url, name, int(facts), int(writers), batch))
