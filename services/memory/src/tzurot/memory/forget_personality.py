"""Forgetting a personality that gateway deletes: everything memory keeps of it goes, and
nothing that was working on it writes anything back afterwards.

What memory keeps per personality: its turns (every user's exchanges, and the channel's own:
greetings, free will, chain replies), its memories (every user's and the shared lore, with
their links), the users' memory modes toward it, and what waits on its exchanges (formation
and fact outbox rows, memory uses).

It first records the personality's tombstone in a transaction of its own (tombstones.py): a
writer for it (another gateway replica whose catalog still has it for up to 5 s, a
confirmation, a formation batch, a StoreFacts, a reflection) either committed before, and
what it wrote is deleted next, or runs after and stores nothing. Then the deletes
(erasure.py, shared with ForgetUser).

`memory.turns` has no index by personality alone, so the turns are found by a sequential scan:
a personality is deleted rarely, and an index would cost every stored turn. Memory's writers
do not wait for that scan (only for the tombstone's own transaction).
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory import tombstones
from tzurot.memory.domain import ForgottenPersonality
from tzurot.memory.erasure import erase
from tzurot.memory.validation import check_id

log = structlog.get_logger("tzurot.memory")


class PersonalityForgetter:
    """ForgetPersonality: plain SQL over schema `memory`: the tombstone, then the deletes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def forget(self, personality_id: str) -> ForgottenPersonality:
        """Deletes everything of the personality (the module says what and in which order)
        and records it as forgotten; what was deleted. Asking again deletes nothing more."""
        check_id("personality_id", personality_id)
        await tombstones.record(self._engine, "personality", personality_id)
        turns, memories_gone = await erase(self._engine, "personality_id", personality_id)
        forgotten = ForgottenPersonality(deleted_turns=turns, deleted_memories=memories_gone)
        log.info(
            "personality forgotten",
            personality_id=personality_id,
            deleted_turns=forgotten.deleted_turns,
            deleted_memories=forgotten.deleted_memories,
        )
        return forgotten
