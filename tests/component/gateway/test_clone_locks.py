"""clone_locks' check of whether a deletion holds what a clone was refused: read from
pg_locks, never by taking a lock (a probe holding one for a moment would make a deletion
trying it then read "another deletion under way" and do nothing); the marker and the
personality's lock held by one session (a deletion refused the personality's lock deletes
nothing); in this database only (advisory locks are per database)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.db.engine import autocommit
from tzurot.gateway.clone_locks import _held_elsewhere, _personality, _personality_deletion

pytestmark = pytest.mark.component


async def _names_of_both_signs(engine: AsyncEngine) -> list[str]:
    """Personality ids whose `hashtext` is negative and positive (the lock's second key is
    an int4, listed in pg_locks as an unsigned oid)."""
    found: dict[bool, str] = {}
    async with engine.connect() as conn:
        while len(found) < 2:
            name = str(uuid.uuid4())
            value = await conn.scalar(sa.select(sa.func.hashtext(name, type_=sa.Integer)))
            assert isinstance(value, int)
            found.setdefault(value < 0, name)
    return list(found.values())


async def _mine(conn: AsyncConnection) -> int:
    count = await conn.scalar(
        sa.text(
            "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
        )
    )
    assert isinstance(count, int)
    return count


async def test_a_deletion_holding_both_locks_is_seen_without_taking_either(
    engine: AsyncEngine,
) -> None:
    for name in await _names_of_both_signs(engine):
        marker, lock = _personality_deletion(name), _personality(name)
        async with autocommit(engine).connect() as holder, autocommit(engine).connect() as prober:
            assert not await _held_elsewhere(prober, marker, with_lock=lock)
            assert await holder.scalar(marker.tried())
            # A deletion holding its marker but refused the personality's lock (a clone has
            # it) is not deleting anything.
            assert not await _held_elsewhere(prober, marker, with_lock=lock)
            assert await holder.scalar(lock.tried())
            assert await _held_elsewhere(prober, marker, with_lock=lock)
            assert not await _held_elsewhere(holder, marker, with_lock=lock)  # its own
            assert await _mine(prober) == 0  # the probe took nothing
            await holder.scalar(sa.select(sa.func.pg_advisory_unlock_all()))


async def test_locks_of_another_database_on_the_server_are_not_this_ones(
    engine: AsyncEngine,
) -> None:
    """A staging copy restored beside production (same personality ids, same server): its
    deletion's locks are not production's."""
    other = f"other_{uuid.uuid4().hex[:8]}"
    async with autocommit(engine).connect() as conn:
        await conn.execute(sa.text(f'create database "{other}"'))
    elsewhere = create_async_engine(
        engine.url.set(database=other), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        name = str(uuid.uuid4())
        marker, lock = _personality_deletion(name), _personality(name)
        async with elsewhere.connect() as holder, autocommit(engine).connect() as prober:
            assert await holder.scalar(marker.tried())
            assert await holder.scalar(lock.tried())
            assert not await _held_elsewhere(prober, marker, with_lock=lock)
            await holder.scalar(sa.select(sa.func.pg_advisory_unlock_all()))
    finally:
        await elsewhere.dispose()
        async with autocommit(engine).connect() as conn:
            await conn.execute(sa.text(f'drop database "{other}"'))
