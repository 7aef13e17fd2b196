"""A user's memory modes per personality (incognito until, fresh since) in SQL: read, set
(refused for a forgotten user or personality), and listed for the data export.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import MemoryMode
from tzurot.memory.memory_rows import insert_unless
from tzurot.memory.scope_size import ScopeSizes
from tzurot.memory.tables import memory_modes
from tzurot.memory.tombstones import Forgotten, forgotten_clause


class ModeQueries:
    """The memory modes' statements (PostgresMemoryStore has them)."""

    _auto: AsyncEngine
    """The pool in autocommit (tzurot.db.engine.autocommit): each statement is its own
    transaction."""
    _sizes: ScopeSizes
    """Scope sizes, counted from a user's fresh point: forgotten when it moves."""

    async def user_modes(self, user_id: str) -> list[tuple[str, MemoryMode]]:
        """(personality id, mode) of every memory mode the user set, by personality id."""
        m = memory_modes.c
        stmt = (
            sa.select(m.personality_id, m.incognito_until, m.fresh_since)
            .where(m.user_id == user_id)
            .order_by(m.personality_id)
        )
        async with self._auto.connect() as conn:
            return [(row[0], MemoryMode(row[1], row[2])) for row in await conn.execute(stmt)]

    async def mode(self, personality_id: str, user_id: str) -> MemoryMode:
        stmt = sa.select(memory_modes.c.incognito_until, memory_modes.c.fresh_since).where(
            memory_modes.c.personality_id == personality_id, memory_modes.c.user_id == user_id
        )
        async with self._auto.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return MemoryMode() if row is None else MemoryMode(row[0], row[1])

    async def set_mode(self, personality_id: str, user_id: str, mode: MemoryMode) -> MemoryMode:
        """Sets the mode; Forgotten (nothing stored) for a forgotten personality or user,
        checked by the upsert itself (tombstones.py)."""
        m = memory_modes.c
        values = {
            "personality_id": personality_id,
            "user_id": user_id,
            "incognito_until": mode.incognito_until,
            "fresh_since": mode.fresh_since,
        }
        stmt = (
            insert_unless(memory_modes, values, forgotten_clause(personality_id, user_id))
            .on_conflict_do_update(
                index_elements=[m.personality_id, m.user_id],
                set_={"incognito_until": mode.incognito_until, "fresh_since": mode.fresh_since},
            )
            .returning(m.personality_id)
        )
        async with self._auto.begin() as conn:
            stored = (await conn.execute(stmt)).first()
        if stored is None:
            raise Forgotten
        self._sizes.forget(personality_id, user_id)  # a fresh point bounds their scope
        return mode
