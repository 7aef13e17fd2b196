"""Memory's history use-cases: store an exchange, read history, follow Discord edits and
deletes, clear, undo the last exchange, forget a user. No gRPC here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog

from tzurot.memory.domain import Exchange, ForgottenUser, NewTurn, StoredExchange, StoredTurn
from tzurot.memory.ports import TurnStore
from tzurot.memory.validation import (
    DEFAULT_HISTORY_LIMIT,
    check_content,
    check_exchange,
    check_history_limit,
    check_id,
    check_lookup_ids,
)
from tzurot.runtime.errors import NotFound

log = structlog.get_logger("tzurot.memory")


class History:
    """The use-cases behind the conversation-history RPCs of MemoryService."""

    def __init__(self, store: TurnStore, *, default_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self._store = store
        self._default_limit = default_limit

    async def store_exchange(
        self,
        job_id: str,
        channel_id: str,
        personality_id: str,
        user_id: str,
        turns: Sequence[NewTurn],
    ) -> StoredExchange:
        """Stores all turns atomically; a repeated job_id stores nothing (created=False)."""
        exchange = check_exchange(
            Exchange(job_id, channel_id, personality_id, user_id, tuple(turns))
        )
        stored = await self._store.store_exchange(exchange)
        log.info(
            "exchange stored" if stored.created else "exchange already stored",
            job_id=job_id,
            turns=len(stored.turns),
        )
        return stored

    async def get_history(
        self,
        channel_id: str,
        personality_id: str,
        limit: int = 0,
        before: datetime | None = None,
    ) -> list[StoredTurn]:
        """The newest `limit` turns (0: the default) older than `before`, oldest first.

        Turns of one exchange share created_at, so paging with `before` set to the oldest
        turn's created_at skips any turns of that exchange the page cut off.
        """
        check_id("channel_id", channel_id)
        check_id("personality_id", personality_id)
        size = check_history_limit(limit, self._default_limit)
        return await self._store.history(channel_id, personality_id, size, before)

    async def find_turns_by_message_id(self, message_ids: Sequence[str]) -> list[StoredTurn]:
        """Turns posted as any of the given Discord messages, oldest first."""
        return await self._store.find_by_message_ids(check_lookup_ids(message_ids))

    async def edit_turn(self, message_id: str, content: str) -> StoredTurn:
        """A Discord message was edited: the turn posted as it takes the new content."""
        check_id("message_id", message_id)
        check_content("content", content)
        turn = await self._store.edit_content(message_id, content)
        if turn is None:
            raise NotFound("no turn was posted as this message", reason="TURN_NOT_FOUND")
        return turn

    async def delete_turns(self, message_ids: Sequence[str]) -> int:
        """Discord messages were deleted: so are the turns posted as any of them."""
        return await self._store.delete_by_message_ids(check_lookup_ids(message_ids))

    async def clear_turns(self, channel_id: str, personality_id: str) -> int:
        """Deletes the whole history of one conversation; the count of turns deleted."""
        check_id("channel_id", channel_id)
        check_id("personality_id", personality_id)
        deleted = await self._store.clear(channel_id, personality_id)
        log.info("history cleared", channel_id=channel_id, deleted=deleted)
        return deleted

    async def remove_last_exchange(
        self, channel_id: str, personality_id: str, user_id: str
    ) -> list[StoredTurn]:
        """Deletes the user's newest exchange in the conversation; its turns (maybe none)."""
        check_id("channel_id", channel_id)
        check_id("personality_id", personality_id)
        check_id("user_id", user_id)
        return await self._store.remove_last_exchange(channel_id, personality_id, user_id)

    async def forget_user(self, user_id: str) -> ForgottenUser:
        """Deletes every turn of the user's exchanges (LongTermMemory forgets the memories)."""
        check_id("user_id", user_id)
        deleted = await self._store.delete_user(user_id)
        log.info("user forgotten", user_id=user_id, deleted_turns=deleted)
        return ForgottenUser(deleted_turns=deleted, deleted_memories=0)
