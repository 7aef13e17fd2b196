"""Forgetting a personality that gateway deletes: everything memory keeps of it goes, and
nothing that was working on it writes anything back afterwards.

What memory keeps per personality: its turns (every user's exchanges, and the channel's own:
greetings, free will, chain replies), its memories (every user's and the shared lore, with
their links), the users' memory modes toward it, and what waits on its exchanges (formation
and fact outbox rows, memory uses).

It first records the personality's tombstone in a transaction of its own (tombstones.py): a
writer for it (another gateway replica whose catalog still has it for up to 5 s, a
confirmation, a formation batch, a StoreFacts, a reflection) either committed before, and
what it wrote is deleted next, or runs after and stores nothing. Then one transaction:

1. One statement deletes the turns and, from the same snapshot, the outbox rows and memory
   uses of their jobs and the personality's fact outbox rows. An exchange is stored with its
   outbox rows in one statement, so it is either wholly seen here or refused after. A
   formation batch or a StoreFacts that claimed its rows before and writes later finds them
   gone and writes nothing (formation's lease is lost; StoreFacts stores facts only for jobs
   still waiting).
2. The memory modes, then the memories (their links cascade).

`memory.turns` has no index by personality alone, so the turns are found by a sequential scan:
a personality is deleted rarely, and an index would cost every stored turn. Memory's writers
do not wait for that scan (only for the tombstone's own transaction).
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory import scoring, tombstones
from tzurot.memory.domain import ForgottenPersonality
from tzurot.memory.tables import memories, memory_modes
from tzurot.memory.validation import check_id

log = structlog.get_logger("tzurot.memory")

_FORGET_TURNS = sa.text(
    "WITH gone AS (DELETE FROM memory.turns WHERE personality_id = :p RETURNING job_id"
    "), jobs AS (SELECT DISTINCT job_id FROM gone"
    "), formation AS (DELETE FROM memory.formation_outbox"
    "  WHERE job_id IN (SELECT job_id FROM jobs)"
    "), uses AS (DELETE FROM memory.memory_uses WHERE job_id IN (SELECT job_id FROM jobs)"
    "), facts AS (DELETE FROM memory.fact_outbox WHERE personality_id = :p"
    ") SELECT count(*) FROM gone"
)
"""Step 1: the turns, and what waits on their exchanges, from one snapshot; turns deleted."""


class PersonalityForgetter:
    """ForgetPersonality: plain SQL over schema `memory`: the tombstone, then the deletes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def forget(self, personality_id: str) -> ForgottenPersonality:
        """Deletes everything of the personality (the module says what and in which order)
        and records it as forgotten; what was deleted. Asking again deletes nothing more."""
        check_id("personality_id", personality_id)
        await tombstones.record(self._engine, "personality", personality_id)
        async with self._engine.begin() as conn:
            turns = int(await conn.scalar(_FORGET_TURNS, {"p": personality_id}) or 0)
            await conn.execute(
                sa.delete(memory_modes).where(memory_modes.c.personality_id == personality_id)
            )
            gone = await conn.execute(
                sa.delete(memories).where(memories.c.personality_id == personality_id)
            )
        # The texts searches tokenised: none of its memories stays in this process (another
        # replica's cache forgets them as it fills), as when a user is forgotten.
        scoring.document.cache_clear()
        forgotten = ForgottenPersonality(deleted_turns=turns, deleted_memories=int(gone.rowcount))
        log.info(
            "personality forgotten",
            personality_id=personality_id,
            deleted_turns=forgotten.deleted_turns,
            deleted_memories=forgotten.deleted_memories,
        )
        return forgotten
