"""A service's statements made ready before its first request, on every pooled connection.

A statement's first run costs more than the next: SQLAlchemy compiles it (once per
process), asyncpg prepares it (once per connection) and the database backend loads the
catalog entries of its tables (once per backend). A service's warm-up runs its hot
statements once with keys that match nothing, which pays all three on the connection it
used; `warm_pool` records the statements it sent and replays them on each connection the
pool opens later, before that connection's first use, so a turn that lands on a connection
opened after start-up (a second one at start, a burst, a recycle) finds them prepared too.

The warm-up must change no row (reads, zero-row updates): its statements are sent again on
every new connection. A replay that fails only costs the connection its warm statements
(logged); the connection is still handed out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

log = structlog.get_logger(__name__)


async def warm_pool(engine: AsyncEngine, warm: Callable[[], Awaitable[object]]) -> int:
    """Runs `warm`, then replays its statements on each connection `engine` opens from now
    on; how many statements it sent."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        await warm()
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)

    def replay(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Runs in SQLAlchemy's greenlet, where the asyncpg adapter's cursor can be driven
        # synchronously (as the dialect's own connect hooks do).
        cursor = dbapi_connection.cursor()
        try:
            for statement, parameters in sent:
                cursor.execute(statement, parameters)
        except Exception as exc:
            log.warning("db.warm_replay_failed", error=type(exc).__name__)
        finally:
            cursor.close()
            dbapi_connection.rollback()

    event.listen(sync_engine.pool, "connect", replay)
    return len(sent)
