"""Child process of the SIGKILL test: open a store and write as fast as possible until killed.

Usage: python writer_child.py HOME SEED

Prints one line per event on stdout, flushed at once, so that the parent knows exactly which writes
were acknowledged before it killed us (a line cut by the kill is ignored by the parent):

    START                         imports done; about to initialise/open the store
    READY                         the store is open; writers are starting
    S <tenant> <id> [<id> ...]    these facts were stored (one `store` or one `store_many`)
    D <tenant> <id>               this fact was deprecated
    U <tenant> <old> <new>        <old> was superseded by <new>
    C <tenant> <size>             a checkpoint of <size> entries was signed and stored
    E <message>                   unexpected error; the child exits with status 3

The writers are several threads sharing one `CortexSync` handle: single `store` calls with
occasional `deprecate`/`supersede` of facts this thread stored, and `store_many` batches with
occasional explicit checkpoints, on two tenants. The store auto-checkpoints every 97 entries.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import traceback

import cortex
from cortex import Settings

TENANTS = ("default", "second")
_out = threading.Lock()


def emit(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def fail(exc: BaseException) -> None:
    emit("E " + "".join(traceback.format_exception(exc)).replace("\n", " | "))
    os._exit(3)


def single_writer(mem: cortex.CortexSync, tenant: str, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[str] = []  # active facts this thread stored in this run
    n = 0
    try:
        while True:
            n += 1
            roll = rng.random()
            if mine and roll < 0.06:
                old = mine.pop(rng.randrange(len(mine)))
                mem.deprecate(old, f"deprecated by child {seed} at step {n}", tenant=tenant)
                emit(f"D {tenant} {old}")
            elif mine and roll < 0.12:
                old = mine.pop(rng.randrange(len(mine)))
                new = mem.supersede(
                    old, f"supersedes {old} ({seed}/{n})", reason="newer", tenant=tenant
                )
                mine.append(new.id)
                emit(f"U {tenant} {old} {new.id}")
            else:
                fact = mem.store(
                    f"single {seed}/{n} " + "x" * rng.randrange(200),
                    project=rng.choice(("alpha", "beta")),
                    tags=rng.sample(("a", "b", "c", "d"), rng.randrange(3)),
                    meta={"n": n},
                    tenant=tenant,
                )
                mine.append(fact.id)
                emit(f"S {tenant} {fact.id}")
            if len(mine) > 200:
                del mine[:100]
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent, then die
        fail(exc)


def batch_writer(mem: cortex.CortexSync, tenant: str, seed: int) -> None:
    rng = random.Random(seed)
    n = 0
    try:
        while True:
            n += 1
            items = [
                {"content": f"batch {seed}/{n}/{i} " + "y" * rng.randrange(100), "tags": ["batch"]}
                for i in range(rng.randint(1, 16))
            ]
            facts = mem.store_many(items, tenant=tenant)
            emit(f"S {tenant} " + " ".join(f.id for f in facts))
            if n % 7 == 0:
                checkpoint = mem.checkpoint(tenant=tenant)
                emit(f"C {tenant} {checkpoint.tree_size}")
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent, then die
        fail(exc)


def main() -> None:
    home, seed = sys.argv[1], int(sys.argv[2])
    emit("START")
    settings = Settings.load(
        home, environ={}, checkpoint_every=97, write_batch_max=256, embedder="none"
    )
    cortex.init_home(settings)
    mem = cortex.connect(settings)
    emit("READY")
    workers = [
        threading.Thread(target=single_writer, args=(mem, TENANTS[0], seed * 10 + 1)),
        threading.Thread(target=single_writer, args=(mem, TENANTS[0], seed * 10 + 2)),
        threading.Thread(target=single_writer, args=(mem, TENANTS[1], seed * 10 + 3)),
        threading.Thread(target=batch_writer, args=(mem, TENANTS[0], seed * 10 + 4)),
        threading.Thread(target=batch_writer, args=(mem, TENANTS[1], seed * 10 + 5)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
