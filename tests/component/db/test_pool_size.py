"""The pool keeps every connection it opens: a burst past its size waits, and opens none
that it would close again (a new connection is a new Postgres backend, issue 16)."""

import asyncio

import pytest
from sqlalchemy import text

from tzurot.db.engine import create_engine
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


async def test_bursts_past_the_pool_size_reuse_the_same_connections(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=3, direct_pool_size=0)
    backends: list[int] = []

    async def use() -> None:
        async with engine.connect() as conn:
            backends.append(await conn.scalar(text("select pg_backend_pid()")))
            await asyncio.sleep(0.05)  # held a moment, so the burst overlaps

    try:
        for _burst in range(3):
            await asyncio.gather(*(use() for _ in range(5)))
    finally:
        await engine.dispose()

    assert len(backends) == 15  # every use was served
    assert len(set(backends)) == 3
