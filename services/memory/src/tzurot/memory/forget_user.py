"""Forgetting a user whose data gateway deletes: everything memory keeps of them goes, and
nothing is stored for them afterwards.

What memory keeps per user: the turns of their exchanges (both sides), their memories (facts
and reflections included; not the personalities' shared lore), their memory modes, and what
waits on their exchanges (formation and fact outbox rows, memory uses). Turns with no user
(greetings, free will, chain replies) are the channel's and stay.

First the user's tombstone, in a transaction of its own (tombstones.py): a StoreExchange, a
formation batch's write, a StoreFacts, an AddMemory or a SetMemoryMode either committed
before (and is deleted next) or runs after and stores nothing. The deletes then go, in one
transaction, in the order ForgetPersonality uses: the turns and what waits on their
jobs from one snapshot, the memory modes, the memories last.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory import tombstones
from tzurot.memory.domain import ForgottenUser
from tzurot.memory.erasure import erase
from tzurot.memory.validation import check_id

log = structlog.get_logger("tzurot.memory")


class UserForgetter:
    """ForgetUser: plain SQL over schema `memory`: the tombstone, then the deletes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def forget(self, user_id: str) -> ForgottenUser:
        """Deletes everything of the user (the module says what) and records them as
        forgotten; what was deleted. Asking again deletes nothing more."""
        check_id("user_id", user_id)
        await tombstones.record(self._engine, "user", user_id)
        turns, memories_gone = await erase(self._engine, "user_id", user_id)
        forgotten = ForgottenUser(deleted_turns=turns, deleted_memories=memories_gone)
        log.info(
            "user forgotten",
            user_id=user_id,
            deleted_turns=forgotten.deleted_turns,
            deleted_memories=forgotten.deleted_memories,
        )
        return forgotten
