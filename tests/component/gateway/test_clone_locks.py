"""clone_locks' check of who holds a deletion's marker: read from pg_locks, never by taking
the lock (a probe holding it for a moment would make a deletion trying it then read
"another deletion under way" and do nothing)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway.clone_locks import _held_elsewhere, _personality_deletion

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


async def test_a_marker_held_by_another_session_is_seen_without_taking_it(
    engine: AsyncEngine,
) -> None:
    for name in await _names_of_both_signs(engine):
        marker = _personality_deletion(name)
        async with autocommit(engine).connect() as holder, autocommit(engine).connect() as prober:
            assert not await _held_elsewhere(prober, marker)
            # The probe took nothing: the marker is free for a deletion to take.
            assert await holder.scalar(marker.tried())
            assert await _held_elsewhere(prober, marker)
            assert not await _held_elsewhere(holder, marker)  # its own is not "elsewhere"
            mine = await prober.scalar(
                sa.text(
                    "select count(*) from pg_locks "
                    "where locktype = 'advisory' and pid = pg_backend_pid()"
                )
            )
            assert mine == 0
            await holder.scalar(sa.select(sa.func.pg_advisory_unlock_all()))
