"""`tzurot.db.direct`: the same values and errors as `Connection.execute`, on the engine's
direct pool (`tzurot.db.direct_pool`) and, for an engine with none, on the engine's own pool."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.direct_pool import PooledConnection, pool_for
from tzurot.db.engine import autocommit, create_engine
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.waits import until

pytestmark = pytest.mark.component

_md = sa.MetaData()
_things = sa.Table(
    "things",
    _md,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("doc", JSONB, nullable=False),
    sa.Column("meta", JSON, nullable=False),
    sa.Column("tags", sa.ARRAY(sa.Text), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
_INSERT = direct.Statement(
    sa.insert(_things)
    .values(
        id=sa.bindparam("id"),
        name=sa.bindparam("name"),
        doc=sa.bindparam("doc", type_=JSONB),
        meta=sa.bindparam("meta", type_=JSON),
        tags=sa.bindparam("tags"),
        n=sa.bindparam("n"),
        at=sa.func.now(),
    )
    .returning(_things)
)
_BY_NAME = direct.Statement(
    sa.select(_things).where(
        _things.c.name == sa.bindparam("name"), _things.c.n < 100, _things.c.n.not_in([7, 8])
    )
)
_NAMES_TEXT = direct.Statement("SELECT name FROM things WHERE n >= $1 ORDER BY name")


OWN_POOL, ENGINE_POOL = "own pool", "engine's pool"


@pytest.fixture(params=[OWN_POOL, ENGINE_POOL])
async def engine(
    fresh_database: DatabaseFactory, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncEngine]:
    """One connection for direct statements: of the direct pool, or of the engine's own."""
    own = request.param == OWN_POOL
    engine = create_engine(
        fresh_database(), pool_size=2 if own else 1, direct_pool_size=1 if own else 0
    )
    assert (pool_for(engine.dialect) is not None) is own
    async with engine.begin() as conn:
        await conn.run_sync(_md.create_all)
    yield autocommit(engine)
    await engine.dispose()


def _in_use(engine: AsyncEngine) -> int:
    """The connections direct statements hold now."""
    pool = pool_for(engine.dialect)
    if pool is not None:
        return pool.in_use
    queue: Any = engine.sync_engine.pool  # a QueuePool (checkedout)
    return int(queue.checkedout())


def _thing(name: str, n: int = 1) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "name": name,
        "doc": {"a": [1, "x"]},
        "meta": {"b": None, "c": "é"},
        "tags": ["t"],
        "n": n,
    }


async def test_a_core_statement_gives_what_execute_gives(engine: AsyncEngine) -> None:
    thing = _thing("one")
    inserted = await direct.fetchrow(engine, _INSERT, thing)
    assert inserted is not None

    found = await direct.fetchrow(engine, _BY_NAME, {"name": "one"})
    async with engine.connect() as conn:
        expected = (await conn.execute(_things.select())).one()._mapping

    assert found is not None
    for key, value in expected.items():
        assert str(found[key]) == str(value) if key == "id" else found[key] == value
    assert str(found["id"]) == str(thing["id"]) == str(inserted["id"])
    assert found["doc"] == {"a": [1, "x"]}  # JSON in and out through the engine's codecs
    assert found["meta"] == {"b": None, "c": "é"}
    assert found["tags"] == ["t"]
    assert found["at"] <= datetime.now(UTC)


async def test_values_bound_in_the_statement_are_sent(engine: AsyncEngine) -> None:
    await direct.fetchrow(engine, _INSERT, _thing("small", n=5))
    await direct.fetchrow(engine, _INSERT, _thing("large", n=500))
    await direct.fetchrow(engine, _INSERT, _thing("seven", n=7))

    assert await direct.fetchrow(engine, _BY_NAME, {"name": "small"}) is not None
    assert await direct.fetchrow(engine, _BY_NAME, {"name": "large"}) is None  # n < 100
    assert await direct.fetchrow(engine, _BY_NAME, {"name": "seven"}) is None  # not 7 or 8


async def test_sql_text_takes_positional_values(engine: AsyncEngine) -> None:
    for name, n in (("b", 2), ("a", 3), ("c", 0)):
        await direct.fetchrow(engine, _INSERT, _thing(name, n))

    rows = await direct.fetch(engine, _NAMES_TEXT, (1,))

    assert [row["name"] for row in rows] == ["a", "b"]


async def test_driver_errors_are_sqlalchemys_without_the_values(engine: AsyncEngine) -> None:
    await direct.fetchrow(engine, _INSERT, _thing("secret-name"))

    with pytest.raises(IntegrityError) as raised:
        await direct.fetchrow(engine, _INSERT, _thing("secret-name"))

    assert "secret-name" not in str(raised.value)
    # The connection went back to the pool usable (pool_size=1).
    assert await direct.fetchrow(engine, _BY_NAME, {"name": "secret-name"}) is not None


_PID = direct.Statement("SELECT pg_backend_pid() AS pid")


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    killer = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    try:
        async with killer.connect() as conn:
            await conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


async def _pid(engine: AsyncEngine) -> int:
    row = await direct.fetchrow(engine, _PID)
    assert row is not None
    return int(row["pid"])


async def test_a_dead_connection_is_replaced(engine: AsyncEngine) -> None:
    pool = pool_for(engine.dialect)
    seen: list[PooledConnection] = []
    if pool is not None:
        pool.watchers.append(seen.append)
    pid = await _pid(engine)
    await _terminate(engine, pid)

    if pool is None:
        # The engine's pool hands out a connection used moments ago unpinged: the statement
        # fails, and the connection is invalidated.
        with pytest.raises(DBAPIError) as raised:
            await direct.fetchrow(engine, direct.Statement("SELECT 1"))
        assert raised.value.connection_invalidated
    else:
        # Once asyncpg has seen the server close it, the direct pool hands out a new one and
        # no statement fails (before that, see the next test).
        await until(seen[-1].is_closed, "asyncpg saw the terminated backend close")

    assert await _pid(engine) != pid


async def test_a_statement_on_a_connection_dead_but_not_yet_known_fails_and_drops_it(
    fresh_database: DatabaseFactory,
) -> None:
    """The server closed the connection, asyncpg has not seen it close (`is_closed()` is
    False): the statement fails (nothing tells beforehand, short of a ping), the connection
    is dropped, and the next statement runs on a new backend."""
    url = fresh_database()
    engine = create_engine(url, pool_size=2, direct_pool_size=1)
    watcher = create_engine(url, pool_size=1)
    pool = pool_for(engine.dialect)
    assert pool is not None
    try:
        pid = await _pid(engine)
        (conn,) = pool._idle
        conn._transport.pause_reading()  # what the server sends waits in the socket
        async with watcher.connect() as killer:
            await killer.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})

            async def gone() -> bool:
                count = await killer.scalar(
                    sa.text("select count(*) from pg_stat_activity where pid = :pid"),
                    {"pid": pid},
                )
                return int(count) == 0

            await until(gone, "the backend exited")
        conn._transport.resume_reading()
        for _ in range(2):  # asyncpg reads the server's FATAL, not yet the end of the stream
            await asyncio.sleep(0)
        assert not conn.is_closed()

        # Handed out as alive (used moments ago: no ping), it fails the statement with a
        # client-side error (InternalClientError: "another operation is in progress").
        with pytest.raises(DBAPIError) as raised:
            await _pid(engine)  # prepared on it: fails before any await
        assert raised.value.connection_invalidated
        assert pool.opened == 0  # dropped, not given back (asyncpg still thinks it open)

        assert await _pid(engine) != pid
        assert pool.opened == 1
    finally:
        await engine.dispose()
        await watcher.dispose()


async def test_a_client_side_error_drops_a_connection_still_open(
    fresh_database: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not the server's answer (asyncpg's own state errors, as when it
    read a terminated backend's FATAL between statements: "another operation is in
    progress") leaves a connection no one can trust, even while `is_closed()` is False."""
    engine = create_engine(fresh_database(), pool_size=2, direct_pool_size=1)
    pool = pool_for(engine.dialect)
    assert pool is not None
    real = PooledConnection.fetchrow

    async def broken(self: PooledConnection, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(PooledConnection, "fetchrow", real)
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation")

    try:
        pid = await _pid(engine)
        monkeypatch.setattr(PooledConnection, "fetchrow", broken)
        with pytest.raises(DBAPIError) as raised:
            await _pid(engine)
        assert raised.value.connection_invalidated
        assert pool.opened == 0  # dropped, not given back
        assert await _pid(engine) != pid
    finally:
        await engine.dispose()


async def test_a_connection_lost_during_a_statement_fails_it_and_is_replaced(
    engine: AsyncEngine,
) -> None:
    pid = await _pid(engine)
    sleeping = asyncio.ensure_future(direct.fetch(engine, direct.Statement("SELECT pg_sleep(30)")))
    await asyncio.sleep(0.2)  # the statement runs
    await _terminate(engine, pid)

    with pytest.raises(DBAPIError) as raised:
        await sleeping
    assert raised.value.connection_invalidated

    assert await _pid(engine) != pid
    assert _in_use(engine) == 0


async def test_a_cancelled_statement_gives_its_connection_back(engine: AsyncEngine) -> None:
    """Cancelled mid-statement, and again while the connection goes back (a server stopping
    cancels its handlers, then their cleanup): the connection still returns to the pool."""
    sleeping = asyncio.ensure_future(direct.fetch(engine, direct.Statement("SELECT pg_sleep(30)")))
    for _ in range(200):  # until the statement runs on the pool's one connection
        if _in_use(engine) == 1:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    sleeping.cancel()
    for _ in range(3):  # into the cleanup, then cancelled again there
        await asyncio.sleep(0)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    for _ in range(500):
        if _in_use(engine) == 0:
            break
        await asyncio.sleep(0.01)
    assert _in_use(engine) == 0
    async with asyncio.timeout(10):  # pool_size=1: a lost connection would block this
        assert await direct.fetchrow(engine, direct.Statement("SELECT 1 AS one")) == (1,)


def test_statements_that_need_execute_are_refused() -> None:
    engine_dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]
    defaults = sa.Table("d", sa.MetaData(), sa.Column("id", sa.Uuid, default=uuid.uuid4))
    expanding = sa.select(_things.c.id).where(_things.c.name.in_(sa.bindparam("names")))

    with pytest.raises(TypeError):
        direct.Statement(sa.insert(defaults)).prepare(engine_dialect, {})
    with pytest.raises(TypeError):
        direct.Statement(expanding).prepare(engine_dialect, {"names": ["a"]})
