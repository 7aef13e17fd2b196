"""Two consolidation passes at once keep one reflection per group of episodes.

Gateway starts Consolidate every 500 delivered exchanges besides the CronJob (whose
`concurrencyPolicy: Forbid` covers only itself), and two gateway replicas can both start
one. Both passes read the same unreflected episodes and both summarise them; a summary and
the marks on its sources are kept together or not at all (`mark_reflected`), so the pass
that marks them second keeps nothing.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.memory.domain import MemoryScope, StoredMemory
from tzurot.memory.embedding import Embedder
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.tables import memories

pytestmark = pytest.mark.component

SCOPE = MemoryScope("lilith", "user-alice")


async def episodes(memory_store: PostgresMemoryStore, count: int) -> list[StoredMemory]:
    """`count` episodes close to each other (cosine ~0.92: one cluster)."""
    stored = []
    for n in range(count):
        close = [1.0] + [0.0] * 383
        close[1 + n] = 0.3
        stored.append(
            await memory_store.insert(
                SCOPE,
                text=f"Yesterday I went to the climbing gym with Sam, visit {n}.",
                embedding=close,
                sector="episodic",
                salience=0.5,
                source_turn_ids=[f"t{n}"],
            )
        )
    return stored


async def reflective(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).where(memories.c.sector == "reflective")
        )
    return int(found or 0)


class ReadsTogether(PostgresMemoryStore):
    """A pass's store that, once it read a scope's episodes, waits until the other pass has
    read them too: both summarise the same episodes before either writes."""

    def __init__(self, engine: AsyncEngine, me: int, read: list[asyncio.Event]) -> None:
        super().__init__(engine)
        self._me = me
        self._read = read

    async def episodic(
        self, scope: MemoryScope
    ) -> tuple[list[StoredMemory], npt.NDArray[np.float32]]:
        found = await super().episodic(scope)
        self._read[self._me].set()
        await self._read[1 - self._me].wait()
        return found


async def test_two_passes_at_once_keep_one_reflection(
    memory_store: PostgresMemoryStore, embedder: Embedder, engine: AsyncEngine, memory_url: str
) -> None:
    """Before, both kept theirs: the second pass's mark counted rows already reflected."""
    await episodes(memory_store, 20)
    other = create_engine(memory_url)  # the other replica's connections
    read = [asyncio.Event(), asyncio.Event()]
    try:
        made = await asyncio.gather(
            LongTermMemory(ReadsTogether(engine, 0, read), embedder).reflect(),
            LongTermMemory(ReadsTogether(other, 1, read), embedder).reflect(),
        )
    finally:
        await other.dispose()

    assert sorted(made) == [0, 1]
    assert await reflective(engine) == 1
    assert await LongTermMemory(memory_store, embedder).reflect() == 0


async def test_a_group_reflected_on_in_part_keeps_nothing_and_marks_nothing(
    memory_store: PostgresMemoryStore, embedder: Embedder, engine: AsyncEngine
) -> None:
    """A pass whose group overlaps another's summary only in part keeps no summary and
    leaves its other episodes unreflected, for the next pass."""
    a, b, c, d = [m.id for m in await episodes(memory_store, 4)]
    (vector,) = await embedder.embed(["the climbing gym with Sam"])

    async def summarise(ids: list[str]) -> StoredMemory | None:
        return await memory_store.mark_reflected(
            SCOPE,
            ids,
            text="Alice climbs with Sam.",
            embedding=vector,
            salience=0.5,
            source_turn_ids=["t0"],
        )

    first = await summarise([a, b])
    second = await summarise([b, c, d])

    assert first is not None
    assert second is None
    assert await reflective(engine) == 1
    unreflected, _ = await memory_store.episodic(SCOPE)
    assert {m.id for m in unreflected} == {c, d}
