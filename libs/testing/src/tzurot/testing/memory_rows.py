"""What memory keeps of a personality, read straight from the mesh's Postgres: the e2e tests
of its deletion count these rows before and after (the world's `database_url`)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World

PERSONALITY_ROWS = {
    "memory.turns": "personality_id = :p",
    "memory.memories": "personality_id = :p",
    "memory.memory_modes": "personality_id = :p",
    "memory.fact_outbox": "personality_id = :p",
    "memory.formation_outbox": "job_id IN (SELECT id::text FROM core.jobs"
    " WHERE personality_id = CAST(:p AS uuid))",
    "memory.memory_uses": "job_id IN (SELECT id::text FROM core.jobs"
    " WHERE personality_id = CAST(:p AS uuid))",
}
"""Every memory table that holds a personality's rows, with how to find them (:p, its id)."""


async def scalar(world: World, sql: str, **params: object) -> object:
    """One value of `sql` on the world's database (a connection of its own)."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)
    finally:
        await engine.dispose()


async def rows_of(world: World, personality: str) -> dict[str, int]:
    """How many rows of each PERSONALITY_ROWS table hold the personality `personality` (its id)."""
    counts = {}
    for table, where in PERSONALITY_ROWS.items():
        count = await scalar(world, f"SELECT count(*) FROM {table} WHERE {where}", p=personality)  # noqa: S608 - our tables
        counts[table] = int(count)  # type: ignore[call-overload]
    return counts


async def formed(world: World, *personalities: str) -> None:
    """Waits until each personality has a long-term memory and nothing waits to be formed."""
    for _ in range(600):
        waiting = await scalar(world, "SELECT count(*) FROM memory.formation_outbox")
        have = await scalar(
            world,
            "SELECT count(DISTINCT personality_id) FROM memory.memories"
            " WHERE personality_id = ANY(:ps)",
            ps=list(personalities),
        )
        if not waiting and have == len(personalities):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("long-term memories were not formed")
