"""The direct path's own pool (`tzurot.db.direct_pool`): a share of the engine's connections,
never more in all; closed with the engine; pings, recycling, set-ups and waits as the
engine's pool has them."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.direct_pool import DirectPool, PooledConnection, connector, pool_for
from tzurot.db.engine import autocommit, create_engine, dispose
from tzurot.db.warm import rolled_back
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.waits import until

pytestmark = pytest.mark.component

APP = "direct-pool-test"
_PID = direct.Statement("SELECT pg_backend_pid() AS pid")
_SLEEP_PID = direct.Statement("SELECT pg_backend_pid() AS pid FROM pg_sleep(0.1)")


def _own_pool(engine: AsyncEngine) -> DirectPool:
    pool = pool_for(engine.dialect)
    assert pool is not None
    return pool


async def _backends(engine: AsyncEngine) -> int:
    """Connections to the database with this test's application_name (the asking one too)."""
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.text("select count(*) from pg_stat_activity where application_name = :app"),
            {"app": APP},
        )
    return int(count)


async def _pid(engine: AsyncEngine, statement: direct.Statement = _PID) -> int:
    row = await direct.fetchrow(engine, statement)
    assert row is not None
    return int(row["pid"])


def test_the_engine_gives_a_third_of_its_connections_up_to_4_to_the_direct_pool() -> None:
    engine = create_engine("postgresql://u@localhost/db")  # no connection is opened
    assert (engine.sync_engine.pool.size(), _own_pool(engine).size) == (11, 4)  # type: ignore[attr-defined]  # a QueuePool
    nine = create_engine("postgresql://u@localhost/db", pool_size=9)
    assert (nine.sync_engine.pool.size(), _own_pool(nine).size) == (6, 3)  # type: ignore[attr-defined]
    two = create_engine("postgresql://u@localhost/db", pool_size=2)
    assert pool_for(two.dialect) is None  # too few to share
    split = create_engine("postgresql://u@localhost/db", pool_size=4, direct_pool_size=3)
    assert (split.sync_engine.pool.size(), _own_pool(split).size) == (1, 3)  # type: ignore[attr-defined]
    alone = create_engine("postgresql://u@localhost/db", pool_size=1)
    assert pool_for(alone.dialect) is None  # direct statements share the one connection
    assert pool_for(autocommit(engine).dialect) is _own_pool(engine)
    with pytest.raises(ValueError, match="at least one"):
        create_engine("postgresql://u@localhost/db", pool_size=2, direct_pool_size=2)


async def test_both_pools_together_open_no_more_than_pool_size(
    fresh_database: DatabaseFactory,
) -> None:
    # libpq's sslmode, as a k8s DSN may carry it: both pools connect with the same arguments.
    url = f"{fresh_database()}&sslmode=disable"
    engine = create_engine(
        url, pool_size=4, direct_pool_size=2, server_settings={"application_name": APP}
    )
    auto = autocommit(engine)
    through_engine: list[int] = []

    async def engine_use() -> None:
        async with engine.connect() as conn:
            through_engine.append(await conn.scalar(sa.text("select pg_backend_pid()")))
            await asyncio.sleep(0.1)

    try:
        for _burst in range(2):
            direct_pids = await asyncio.gather(
                *(_pid(auto, _SLEEP_PID) for _ in range(6)), *(engine_use() for _ in range(6))
            )
        direct_used = {pid for pid in direct_pids if pid is not None}
        assert len(direct_used) == 2
        assert len(set(through_engine)) == 2
        assert not direct_used & set(through_engine)
        assert await _backends(engine) == 4
    finally:
        await engine.dispose()


async def test_disposing_the_engine_closes_the_direct_pools_connections(
    fresh_database: DatabaseFactory,
) -> None:
    url = fresh_database()
    engine = create_engine(
        url, pool_size=3, direct_pool_size=2, server_settings={"application_name": APP}
    )
    watcher = create_engine(url, pool_size=2, direct_pool_size=0)
    seen: list[PooledConnection] = []
    _own_pool(engine).watchers.append(seen.append)
    try:
        await asyncio.gather(*(_pid(engine, _SLEEP_PID) for _ in range(2)))  # opens two
        assert len(set(seen)) == 2
        await engine.dispose()  # SQLAlchemy's own, not only tzurot.db.engine.dispose

        assert all(conn.is_closed() for conn in seen)
        assert await _backends(watcher) == 0
        assert _own_pool(engine).opened == 0
        assert await _pid(engine) > 0  # the engine still works, on a new connection
    finally:
        await engine.dispose()
        await watcher.dispose()
    assert seen[-1].is_closed()


async def test_a_stop_waits_for_a_direct_statement_then_closes_its_connection(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=2, direct_pool_size=1)
    seen: list[PooledConnection] = []
    _own_pool(engine).watchers.append(seen.append)
    call = asyncio.ensure_future(
        direct.fetch(engine, direct.Statement("SELECT 1 FROM pg_sleep(0.5)"))
    )
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)

    await dispose(engine)

    assert call.done()
    assert await call == [(1,)]  # it was let finish
    assert seen[0].is_closed()


async def test_a_direct_statement_still_running_after_the_wait_is_cut_off(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=2, direct_pool_size=1)
    call = asyncio.ensure_future(direct.fetch(engine, direct.Statement("SELECT pg_sleep(30)")))
    for _ in range(500):
        if _own_pool(engine).in_use:
            break
        await asyncio.sleep(0.01)

    await dispose(engine, within=0.2)

    with pytest.raises(sa.exc.DBAPIError):
        await call
    assert _own_pool(engine).opened == 0


async def test_a_connection_refused_fails_as_on_the_engines_pool(
    fresh_database: DatabaseFactory,
) -> None:
    missing = make_url(fresh_database()).set(database="no_such_database")
    url = missing.render_as_string(hide_password=False)
    raised = []
    for direct_pool_size in (0, 1):  # direct statements on the engine's pool, on their own
        engine = create_engine(url, pool_size=2, direct_pool_size=direct_pool_size)
        try:
            with pytest.raises(Exception, match="no_such_database") as failed:
                await direct.fetchrow(engine, _PID)
            raised.append(failed.value)
        finally:
            await engine.dispose()
        engine = create_engine(url, pool_size=2, direct_pool_size=direct_pool_size)
    try:
        with pytest.raises(DBAPIError) as connecting:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    on_engine, on_own = raised
    # SQLAlchemy's exception, as `engine.connect()` raises it, on both paths.
    assert type(on_own) is type(on_engine) is type(connecting.value)
    assert pool_for(engine.dialect) is not None
    assert _own_pool(engine).opened == 0


def _log_statements(engine: AsyncEngine) -> list[str]:
    """Every statement sent on the direct pool's connections, from their first use on
    (the pings before their later uses too)."""
    sent: list[str] = []
    watched: set[int] = set()

    def watch(conn: PooledConnection) -> None:
        if id(conn) not in watched:
            watched.add(id(conn))
            conn.add_query_logger(lambda query: sent.append(query.query))

    _own_pool(engine).watchers.append(watch)
    return sent


async def test_an_idle_connection_is_pinged_before_use_and_a_recent_one_is_not(
    fresh_database: DatabaseFactory,
) -> None:
    url = fresh_database()
    for after, pinged in ((60.0, False), (0.0, True)):
        engine = create_engine(url, pool_size=2, direct_pool_size=1, ping_after_idle=after)
        try:
            sent = _log_statements(engine)
            first = await _pid(engine)
            await asyncio.sleep(0)  # asyncpg hands logged queries over with call_soon
            sent.clear()
            assert await _pid(engine) == first
            await asyncio.sleep(0)  # asyncpg hands logged queries over with call_soon
            assert (";" in sent) is pinged, sent
        finally:
            await engine.dispose()


async def _pool(url: str, **options: Any) -> tuple[AsyncEngine, DirectPool]:
    """An engine whose dialect builds the connections of a `DirectPool` made here."""
    engine = create_engine(url, pool_size=1)
    settings = {"size": 1, "ping_after_idle": 60.0, "recycle": 1800.0, "timeout": 30.0}
    made = DirectPool(
        connector(engine.dialect, engine.url, {}, timeout=10.0), **{**settings, **options}
    )
    return engine, made


async def _on(pool: DirectPool, use: Callable[[PooledConnection], Awaitable[Any]]) -> Any:
    conn = await pool.acquire()
    try:
        return await use(conn)
    finally:
        pool.release(conn)


async def _backend(conn: PooledConnection) -> int:
    return int(await conn.fetchval("select pg_backend_pid()"))


async def test_a_connection_past_its_age_is_replaced(fresh_database: DatabaseFactory) -> None:
    engine, pool = await _pool(fresh_database(), recycle=0.0)
    try:
        first = await _on(pool, _backend)
        assert await _on(pool, _backend) != first
        assert pool.opened == 1
    finally:
        await pool.dispose()
        await engine.dispose()


async def test_a_use_waits_for_a_free_connection_up_to_the_timeout(
    fresh_database: DatabaseFactory,
) -> None:
    engine, pool = await _pool(fresh_database(), timeout=0.2)
    held = await pool.acquire()
    try:
        with pytest.raises(PoolTimeout):
            await _on(pool, _backend)
        later = asyncio.ensure_future(_on(pool, _backend))
        await asyncio.sleep(0.05)
        pool.release(held)  # a waiting use gets it
        assert await later == await _backend(held)
    finally:
        await pool.dispose()
        await engine.dispose()


async def test_set_ups_run_once_on_each_connection_open_or_new(
    fresh_database: DatabaseFactory,
) -> None:
    engine, pool = await _pool(fresh_database(), size=2)
    ran: list[int] = []

    async def set_up(conn: PooledConnection) -> None:
        ran.append(await _backend(conn))
        await conn.execute("SET application_name = 'set-up'")

    async def name(conn: PooledConnection) -> str:
        await asyncio.sleep(0.05)  # held, so two uses at once take both connections
        return str(await conn.fetchval("show application_name"))

    try:
        first = await _on(pool, _backend)  # open before the set-up is added
        pool.on_connect(set_up)
        assert list(await asyncio.gather(_on(pool, name), _on(pool, name))) == ["set-up"] * 2
        assert await _on(pool, name) == "set-up"
        # Once each: on the connection open before, and on the one opened after.
        assert first in ran
        assert len(set(ran)) == len(ran) == 2

        skipped: list[int] = []

        async def later(conn: PooledConnection) -> None:
            skipped.append(await _backend(conn))

        held = await pool.acquire()
        pool.on_connect(later, skip=[held])
        pool.release(held)
        await asyncio.gather(_on(pool, name), _on(pool, name))
        assert await _backend(held) not in skipped
        assert len(skipped) == 1
    finally:
        await pool.dispose()
        await engine.dispose()


async def test_a_failing_set_up_fails_the_use_and_drops_the_connection(
    fresh_database: DatabaseFactory,
) -> None:
    engine, pool = await _pool(fresh_database())
    calls: list[int] = []

    async def failing_once(conn: PooledConnection) -> None:
        calls.append(1)
        if len(calls) == 1:
            await conn.execute("SET no_such_setting_without_a_dot = 1")

    try:
        pool.on_connect(failing_once)
        with pytest.raises(Exception, match="no_such_setting"):
            await _on(pool, _backend)
        assert pool.opened == 0
        assert await _on(pool, _backend) > 0  # the next one is set up anew
    finally:
        await pool.dispose()
        await engine.dispose()


async def test_a_connection_opened_while_the_engine_is_disposed_is_closed(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=2, direct_pool_size=1)
    pool = _own_pool(engine)
    seen: list[PooledConnection] = []
    pool.watchers.append(seen.append)
    connect = pool._connect

    async def slow() -> PooledConnection:
        await asyncio.sleep(0.3)
        return await connect()

    pool._connect = slow
    try:
        call = asyncio.ensure_future(direct.fetch(engine, direct.Statement("SELECT 1")))
        await until(lambda: pool.in_use == 1, "the use counted while its connection opens")
        await dispose(engine, within=0.05)  # gives up waiting while it still connects

        assert await call == [(1,)]
        assert seen[0].is_closed()  # not kept: opened for a pool disposed meanwhile
        assert (pool.opened, pool.in_use) == (0, 0)
    finally:
        await engine.dispose()


async def test_a_use_cancelled_during_begin_leaves_no_transaction_behind(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=2, direct_pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(sa.text("create table t (x int)"))
    insert = direct.Statement("INSERT INTO t VALUES ($1)")
    try:
        for i in range(20):
            task = asyncio.ensure_future(rolled_back(engine, direct.Statement("SELECT 1"), ()))
            for _ in range(3):  # it takes the connection and sends BEGIN
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await direct.fetch(autocommit(engine), insert, (i,))  # its own transaction
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("select count(*) from t")) == 20
    finally:
        await engine.dispose()


async def test_a_failing_watcher_gives_the_connection_back(
    fresh_database: DatabaseFactory,
) -> None:
    engine, pool = await _pool(fresh_database(), timeout=1.0)

    def failing(conn: PooledConnection) -> None:
        raise RuntimeError("watcher failed")

    try:
        pool.watchers.append(failing)
        with pytest.raises(RuntimeError):
            await pool.acquire()
        pool.watchers.clear()
        assert (pool.in_use, pool.opened) == (0, 0)
        assert await _on(pool, _backend) > 0  # size 1: a lost slot would time out
    finally:
        await pool.dispose()
        await engine.dispose()
