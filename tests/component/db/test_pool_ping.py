"""Pooled connections: an idle one that died is replaced; a recently used one is not pinged."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


def _count_pings(engine: AsyncEngine) -> list[int]:
    dialect = engine.sync_engine.dialect
    real_ping = dialect.do_ping
    pings: list[int] = []

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return real_ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        pid = await conn.scalar(text("select pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def test_a_dead_idle_connection_is_replaced_before_use(
    fresh_database: DatabaseFactory,
) -> None:
    url = fresh_database()
    engine = create_engine(url, pool_size=1, ping_after_idle=0.0)
    killer = create_engine(url, pool_size=1)
    pings = _count_pings(engine)
    try:
        before = await _pid(engine)
        async with killer.connect() as conn:
            await conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": before})
        after = await _pid(engine)  # would raise had the dead connection been handed out
    finally:
        await engine.dispose()
        await killer.dispose()

    assert after != before
    assert len(pings) == 1


async def test_a_recently_used_connection_is_handed_out_without_a_ping(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=1, ping_after_idle=60.0)
    pings = _count_pings(engine)
    try:
        first = await _pid(engine)
        second = await _pid(engine)
    finally:
        await engine.dispose()

    assert first == second
    assert pings == []
