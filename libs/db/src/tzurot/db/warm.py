"""A service's statements made ready before its first request, on every pooled connection.

A statement's first run costs more than the next: SQLAlchemy compiles it (once per
process), asyncpg prepares it (once per connection) and the database backend loads the
catalog entries of its tables (once per backend). A service's warm-up runs its hot
statements once with keys that match nothing, which pays all three on the connection it
used; `warm_pool` records the statements it sent (through SQLAlchemy, and through
`tzurot.db.direct`) and replays them on each connection the pool that ran them opens later
(the engine's, or the direct pool's), before that connection's first use, so a turn that
lands on a connection opened after start-up (a second one at start, a burst, a recycle)
finds them prepared too.

The warm-up must change no row (reads, zero-row updates, or writes in a transaction that is
rolled back: `rolled_back`). The replay runs in a transaction that is rolled back. A replay
that fails only costs the connection its warm statements (logged); the connection is still
handed out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from weakref import WeakSet

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_only, greenlet_spawn

from tzurot.db import direct
from tzurot.db.direct_pool import pool_for

log = structlog.get_logger(__name__)

_TRANSACTION_CONTROL = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}
)


async def rolled_back(
    engine: AsyncEngine, statement: direct.Statement, params: direct.Params
) -> None:
    """Runs `statement` as `direct.fetch` does (same SQL on the same pool, so the same
    prepared statement on the connection) but in a transaction that is rolled back: nothing
    it writes is kept."""
    sql, args = statement.prepare(engine.dialect, params)
    pool = pool_for(engine.dialect)
    if pool is not None:
        conn = await pool.acquire()
        try:
            await _rolled_back(conn, [(sql, args)])
        except BaseException:
            # Interrupted (a cancel while BEGIN is in flight leaves the connection about to
            # be in a transaction) or failed: not one to hand out again.
            pool.release(conn, discard=True)
            raise
        pool.release(conn)
        return
    proxied = await engine.raw_connection()
    try:
        driver = proxied.driver_connection
        assert driver is not None
        await _rolled_back(driver, [(sql, args)])
    finally:
        await greenlet_spawn(proxied.close)


async def _rolled_back(driver: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Runs `statements` on an asyncpg connection in a transaction that is rolled back."""
    transaction = driver.transaction()
    await transaction.start()
    try:
        for sql, args in statements:
            await driver.fetch(sql, *args)
    finally:
        await transaction.rollback()


async def warm_pool(engine: AsyncEngine, warm: Callable[[], Awaitable[object]]) -> int:
    """Runs `warm`, then replays its statements on each connection `engine` opens from now
    on; how many statements it sent."""
    through_cursor: list[tuple[str, Any]] = []
    through_driver = _DriverStatements()  # on the engine's connections
    on_direct_pool = _DriverStatements()

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        through_cursor.append((statement, parameters))

    def watch(
        dbapi_connection: Any, _record: ConnectionPoolEntry, _p: PoolProxiedConnection
    ) -> None:
        through_driver.watch(dbapi_connection.driver_connection)

    sync_engine = engine.sync_engine
    direct_pool = pool_for(engine.dialect)
    event.listen(sync_engine, "before_cursor_execute", record)
    event.listen(sync_engine.pool, "checkout", watch)
    if direct_pool is not None:
        direct_pool.watchers.append(on_direct_pool.watch)
    try:
        await warm()
        await asyncio.sleep(0)  # asyncpg hands logged queries over with call_soon
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
        event.remove(sync_engine.pool, "checkout", watch)
        if direct_pool is not None:
            direct_pool.watchers.remove(on_direct_pool.watch)
        through_driver.stop()
        on_direct_pool.stop()

    def replay(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Runs in SQLAlchemy's greenlet, where the asyncpg adapter's cursor (and the driver,
        # through await_only) can be driven synchronously, as the dialect's own hooks do.
        try:
            if through_cursor:
                cursor = dbapi_connection.cursor()
                try:
                    for statement, parameters in through_cursor:
                        cursor.execute(statement, parameters)
                finally:
                    cursor.close()
                    dbapi_connection.rollback()
            if through_driver.statements:
                await_only(
                    _rolled_back(dbapi_connection.driver_connection, through_driver.statements)
                )
        except Exception as exc:  # a cold connection still works
            log.warning("db.warm_replay_failed", error=type(exc).__name__)

    async def replay_direct(conn: Any) -> None:
        try:
            await _rolled_back(conn, on_direct_pool.statements)
        except Exception as exc:  # a cold connection still works
            log.warning("db.warm_replay_failed", error=type(exc).__name__)

    event.listen(sync_engine.pool, "connect", replay)
    if direct_pool is not None and on_direct_pool.statements:
        # Not on the connections that ran the warm-up: they have its statements.
        direct_pool.on_connect(replay_direct, skip=on_direct_pool.watched)
    return len(through_cursor) + len(through_driver.statements) + len(on_direct_pool.statements)


class _DriverStatements:
    """The statements sent on the asyncpg connections it watches (fetch, fetchrow, …),
    transaction control left out (a replay has its own transaction)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.watched: WeakSet[Any] = WeakSet()  # not kept alive by the replay's closures

    def watch(self, driver: Any) -> None:
        if driver not in self.watched:
            driver.add_query_logger(self._record)
            self.watched.add(driver)

    def stop(self) -> None:
        for driver in self.watched:
            driver.remove_query_logger(self._record)

    def _record(self, query: Any) -> None:  # asyncpg's LoggedQuery
        words = query.query.split(None, 1)
        if words and words[0].rstrip(";").upper() not in _TRANSACTION_CONTROL:
            self.statements.append((query.query, tuple(query.args)))
