"""warm_pool: a warm-up's statements (through SQLAlchemy and through tzurot.db.direct) are
prepared on every connection the pool that ran them opens later (the engine's, the direct
pool's), and nothing they write is kept (the replay is rolled back, as `rolled_back` is);
the pool hands out the connection used last (LIFO), the one whose statements are prepared."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.db import direct
from tzurot.db.direct_pool import pool_for
from tzurot.db.engine import create_engine
from tzurot.db.warm import rolled_back, warm_pool
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

READ = "select count(*) from warm_probe where name = :name"
WRITE = "update warm_probe set hits = hits + 1 where name = :name"
DIRECT_READ = direct.Statement("select hits from warm_probe where name = $1")
DIRECT_WRITE = direct.Statement("insert into warm_probe values ($1, 0)")
PREPARED_HERE = direct.Statement(
    "select pg_backend_pid() as pid, array_agg(statement) as prepared"
    " from pg_prepared_statements, pg_sleep(0.05)"  # held a moment: two at once take two
)


@pytest.fixture(params=["own pool", "engine's pool"])
async def engine(
    fresh_database: DatabaseFactory, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncEngine]:
    own = request.param == "own pool"
    engine = create_engine(fresh_database(), direct_pool_size=None if own else 0)
    assert (pool_for(engine.dialect) is not None) is own
    async with engine.begin() as conn:
        await conn.execute(text("create table warm_probe (name text primary key, hits int)"))
        await conn.execute(text("insert into warm_probe values ('kept', 0)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _warm(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text(READ), {"name": "\x7fnobody"})
        await conn.execute(text(WRITE), {"name": "\x7fnobody"})
        await conn.commit()
    await direct.fetchrow(engine, DIRECT_READ, ("\x7fnobody",))
    await rolled_back(engine, DIRECT_WRITE, ("\x7fnobody",))  # a row, never kept


async def _prepared(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(text("select statement from pg_prepared_statements"))
    return {statement for (statement,) in rows}


async def _backend(conn: AsyncConnection) -> int:
    pid = await conn.scalar(text("select pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def test_connections_opened_after_the_warm_up_have_its_statements_prepared(
    engine: AsyncEngine,
) -> None:
    assert await warm_pool(engine, lambda: _warm(engine)) == 4

    # Two at once: the second is a connection opened after the warm-up.
    async with engine.connect() as first, engine.connect() as second:
        assert await _backend(first) != await _backend(second)
        engine_prepared = [await _prepared(conn) for conn in (first, second)]
    if pool_for(engine.dialect) is None:
        direct_prepared = engine_prepared
    else:
        rows = await asyncio.gather(*(direct.fetchrow(engine, PREPARED_HERE) for _ in range(2)))
        assert len({row["pid"] for row in rows if row}) == 2
        direct_prepared = [set(row["prepared"]) for row in rows if row]
    for prepared in engine_prepared:
        assert any("warm_probe where name = $1" in s for s in prepared)
        assert any("set hits = hits + 1" in s for s in prepared)
    for prepared in direct_prepared:
        assert any("select hits from warm_probe" in s for s in prepared)
        assert any("insert into warm_probe" in s for s in prepared)

    async with engine.connect() as conn:
        assert (await conn.execute(text("select name, hits from warm_probe"))).all() == [
            ("kept", 0)
        ]


async def test_a_failing_replay_still_hands_out_a_working_connection(
    engine: AsyncEngine,
) -> None:
    await warm_pool(engine, lambda: _warm(engine))
    async with engine.begin() as conn:
        await conn.execute(text("drop table warm_probe"))  # the replay now fails

    async with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert await conn.scalar(text("select 1")) == 1
    one = direct.Statement("select 1 as one from pg_sleep(0.05)")
    assert await asyncio.gather(*(direct.fetchrow(engine, one) for _ in range(2))) == [(1,)] * 2


async def test_the_pool_hands_out_the_connection_used_last(engine: AsyncEngine) -> None:
    async def backend_held_briefly() -> int:
        async with engine.connect() as conn:
            pid = await _backend(conn)
            await asyncio.sleep(0.05)
            return pid

    opened = set(await asyncio.gather(*(backend_held_briefly() for _ in range(3))))
    assert len(opened) == 3
    last = await backend_held_briefly()
    assert {await backend_held_briefly() for _ in range(5)} == {last}
