"""A service's statements made ready before its first request, on every pooled connection.

A statement's first run costs more than the next: SQLAlchemy compiles it (once per
process), asyncpg prepares it (once per connection) and the database backend loads the
catalog entries of its tables (once per backend). A service's warm-up runs its hot
statements once with keys that match nothing, which pays all three on the connection it
used; `warm_pool` records the statements it sent (through SQLAlchemy, and through
`tzurot.db.direct`) and replays them on each connection the pool opens later, before that
connection's first use, so a turn that lands on a connection opened after start-up (a
second one at start, a burst, a recycle) finds them prepared too.

The warm-up must change no row (reads, zero-row updates, or writes in a transaction that is
rolled back: `rolled_back`). The replay runs in a transaction that is rolled back. A replay
that fails only costs the connection its warm statements (logged); the connection is still
handed out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_only, greenlet_spawn

from tzurot.db import direct

log = structlog.get_logger(__name__)

_TRANSACTION_CONTROL = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}
)


async def rolled_back(
    engine: AsyncEngine, statement: direct.Statement, params: direct.Params
) -> None:
    """Runs `statement` as `direct.fetch` does (same SQL, so the same prepared statement on
    the connection) but in a transaction that is rolled back: nothing it writes is kept."""
    sql, args = statement.prepare(engine.dialect, params)
    proxied = await engine.raw_connection()
    try:
        driver = proxied.driver_connection
        assert driver is not None
        transaction = driver.transaction()
        await transaction.start()
        try:
            await driver.fetch(sql, *args)
        finally:
            await transaction.rollback()
    finally:
        await greenlet_spawn(proxied.close)


async def _replay_direct(driver: Any, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
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
    through_driver: list[tuple[str, tuple[Any, ...]]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        through_cursor.append((statement, parameters))

    def record_direct(query: Any) -> None:  # asyncpg's LoggedQuery: fetch, fetchrow, …
        words = query.query.split(None, 1)
        # Transaction control is left out: the replay has its own transaction.
        if words and words[0].rstrip(";").upper() not in _TRANSACTION_CONTROL:
            through_driver.append((query.query, tuple(query.args)))

    watched: list[Any] = []

    def watch(
        dbapi_connection: Any, _record: ConnectionPoolEntry, _p: PoolProxiedConnection
    ) -> None:
        driver = dbapi_connection.driver_connection
        if driver not in watched:
            driver.add_query_logger(record_direct)
            watched.append(driver)

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    event.listen(sync_engine.pool, "checkout", watch)
    try:
        await warm()
        await asyncio.sleep(0)  # asyncpg hands logged queries over with call_soon
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
        event.remove(sync_engine.pool, "checkout", watch)
        for driver in watched:
            driver.remove_query_logger(record_direct)

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
            if through_driver:
                await_only(_replay_direct(dbapi_connection.driver_connection, through_driver))
        except Exception as exc:  # a cold connection still works
            log.warning("db.warm_replay_failed", error=type(exc).__name__)

    event.listen(sync_engine.pool, "connect", replay)
    return len(through_cursor) + len(through_driver)
