"""`python -m bench.direct [--calls N] [--rounds R]`: CPU per statement, SQLAlchemy vs direct.

One-row statements on a fresh database (a read by key, an insert returning its row), each
run as the stores ran them before issue 16's domain round (`async with engine.connect()`:
in a transaction, and on the autocommit engine) and through `tzurot.db.direct` on the same
pool. CPU time of this process per call (Postgres not counted), rounds interleaved; the
median of the rounds is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa

from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db import direct
from tzurot.db.engine import autocommit, create_engine

_md = sa.MetaData()
_items = sa.Table(
    "items",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
_READ = sa.select(_items).where(_items.c.id == sa.bindparam("id"))
_INSERT = (
    sa.insert(_items)
    .values(id=sa.bindparam("id"), key=sa.bindparam("key"), body=sa.bindparam("body"))
    .returning(_items)
)

Call = Callable[[int], Awaitable[object]]


async def _cpu_us(call: Call, calls: int, start: int) -> float:
    began = time.process_time()
    for n in range(start, start + calls):
        await call(n)
    return (time.process_time() - began) * 1e6 / calls


async def _measure(calls: int, rounds: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="tzdirect-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, f"direct_{uuid.uuid4().hex[:8]}")
        engine = create_engine(url, pool_size=2)
        auto = autocommit(engine)
        async with engine.begin() as conn:
            await conn.run_sync(_md.create_all)
        read, insert = direct.Statement(_READ), direct.Statement(_INSERT)

        def row(n: int) -> dict[str, object]:
            return {"id": n, "key": f"k{n}", "body": "x" * 200}

        async def sa_read_txn(n: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(_READ, {"id": n % 100})).first()

        async def sa_read_auto(n: int) -> object:
            async with auto.connect() as conn:
                return (await conn.execute(_READ, {"id": n % 100})).first()

        async def direct_read(n: int) -> object:
            return await direct.fetchrow(auto, read, {"id": n % 100})

        async def sa_insert_txn(n: int) -> object:
            async with engine.begin() as conn:
                return (await conn.execute(_INSERT, row(n))).first()

        async def sa_insert_auto(n: int) -> object:
            async with auto.connect() as conn:
                return (await conn.execute(_INSERT, row(n))).first()

        async def direct_insert(n: int) -> object:
            return await direct.fetchrow(auto, insert, row(n))

        variants: dict[str, Call] = {
            "read, SQLAlchemy in a transaction": sa_read_txn,
            "read, SQLAlchemy autocommit": sa_read_auto,
            "read, direct": direct_read,
            "insert, SQLAlchemy in a transaction": sa_insert_txn,
            "insert, SQLAlchemy autocommit": sa_insert_auto,
            "insert, direct": direct_insert,
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        next_id = 1000
        for _ in range(100):  # warm: compiled caches, prepared statements, pool
            await direct_insert(next_id)
            next_id += 1
        for _ in range(rounds):
            for name, call in variants.items():
                samples[name].append(await _cpu_us(call, calls, next_id))
                next_id += calls
        await engine.dispose()
    return {name: statistics.median(found) for name, found in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.direct")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, us in asyncio.run(_measure(args.calls, args.rounds)).items():
        print(f"{name:38} {us:7.1f} µs CPU a call", flush=True)


if __name__ == "__main__":
    main()
