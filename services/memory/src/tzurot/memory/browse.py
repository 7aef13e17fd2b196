"""Browsing a user's memories: a page at a time, newest first, and deleting one of them.

Reading a page has no side effects: it neither reinforces (salience, last access) nor links
what it shows; only use in a delivered answer does (longterm.py). The shared lore (user '')
is not browsed here, and a user deletes only memories of their own scope.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import StoredMemory
from tzurot.memory.memory_rows import memory_columns, stored_memory
from tzurot.memory.tables import memories
from tzurot.memory.validation import check_id
from tzurot.runtime.errors import InvalidArgument

DEFAULT_PAGE = 10
MAX_PAGE = 100
MAX_OFFSET = 1_000_000


class MemoryBrowser:
    """ListMemories and DeleteMemory: plain SQL over `memory.memories`, one scope at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self, personality_id: str, user_id: str, *, limit: int = 0, offset: int = 0
    ) -> tuple[list[StoredMemory], int]:
        """Up to `limit` memories of the scope after the newest `offset`, and the total."""
        scope = _scope(personality_id, user_id)
        limit = limit or DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument("limit", f"limit must be between 1 and {MAX_PAGE}")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgument("offset", f"offset must be between 0 and {MAX_OFFSET}")
        rows = (
            sa.select(*memory_columns())
            .where(*scope)
            .order_by(memories.c.created_at.desc(), memories.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(memories).where(*scope)
        async with self._engine.connect() as conn:
            found = [stored_memory(row) for row in await conn.execute(rows)]
            total = int(await conn.scalar(count) or 0)
        return found, total

    async def delete(
        self, personality_id: str, user_id: str, memory_id: str
    ) -> StoredMemory | None:
        """Deletes the scope's memory `memory_id` (its links go with it); what it was."""
        scope = _scope(personality_id, user_id)
        try:
            key = uuid.UUID(memory_id)
        except ValueError:
            raise InvalidArgument("memory_id", "memory_id must be a UUID") from None
        stmt = sa.delete(memories).where(memories.c.id == key, *scope).returning(*memory_columns())
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else stored_memory(row)


def _scope(personality_id: str, user_id: str) -> list[sa.ColumnElement[bool]]:
    check_id("personality_id", personality_id)
    check_id("user_id", user_id)  # required: the shared lore is not a user's to browse
    return [memories.c.personality_id == personality_id, memories.c.user_id == user_id]
