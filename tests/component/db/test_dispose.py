"""`tzurot.db.engine.dispose`: a service's stop closes every connection, including the ones
its cancelled calls are still giving back."""

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.util import greenlet_spawn

from tzurot.db.engine import create_engine, dispose
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


async def test_a_connection_still_in_use_is_closed_once_it_comes_back(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=1)
    used: list[Any] = []

    async def slow_call() -> None:
        async with engine.connect() as conn:
            used.append((await conn.get_raw_connection()).driver_connection)
            await conn.execute(sa.text("select pg_sleep(0.5)"))

    call = asyncio.ensure_future(slow_call())
    for _ in range(500):
        if used:
            break
        await asyncio.sleep(0.01)

    await dispose(engine)

    assert call.done()
    (driver,) = used
    assert driver.is_closed()  # not left to the garbage collector


async def test_a_connection_never_given_back_does_not_hold_the_stop(
    fresh_database: DatabaseFactory,
) -> None:
    engine = create_engine(fresh_database(), pool_size=1)
    held = await engine.raw_connection()
    try:
        started = time.monotonic()
        await dispose(engine, within=0.3)
        assert time.monotonic() - started < 5
    finally:
        await greenlet_spawn(held.invalidate)  # closed, not handed to the disposed pool
