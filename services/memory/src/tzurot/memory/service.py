"""Memory's history use-cases: store an exchange, read history, follow Discord edits and
deletes, clear, undo the last exchange, export a user's turns. No gRPC here (forgetting a
user is forget_user.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from tzurot.memory.domain import (
    Exchange,
    NewTurn,
    StoredExchange,
    StoredTurn,
)
from tzurot.memory.paging import HistoryCursor, decode_cursor, encode_cursor, newest_within
from tzurot.memory.ports import TurnStore
from tzurot.memory.validation import (
    DEFAULT_HISTORY_LIMIT,
    check_content,
    check_exchange,
    check_history_limit,
    check_id,
    check_lookup_ids,
    check_max_tokens,
)
from tzurot.runtime.errors import InvalidArgument, NotFound

log = structlog.get_logger("tzurot.memory")


@dataclass(frozen=True)
class HistoryPage:
    """Turns oldest first; `next_page_token` (or '') continues with the older ones."""

    turns: list[StoredTurn]
    next_page_token: str = ""


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
        *,
        occurred_at: datetime | None = None,
        used_memory_ids: Sequence[str] = (),
        extract_facts: bool = False,
        imported: bool = False,
    ) -> StoredExchange:
        """Stores all turns atomically; a repeated job_id stores nothing (created=False), nor
        does an exchange of a forgotten user or personality (created=False, no turns: the
        caller has nothing to retry)."""
        exchange = check_exchange(
            Exchange(
                job_id,
                channel_id,
                personality_id,
                user_id,
                tuple(turns),
                occurred_at=occurred_at,
                used_memory_ids=tuple(used_memory_ids),
                extract_facts=extract_facts,
                imported=imported,
            )
        )
        stored = await self._store.store_exchange(exchange)
        if stored.created:
            event = "exchange stored"
        elif stored.turns:
            event = "exchange already stored"
        else:  # its user or personality was forgotten (tombstones.py)
            event = "exchange of a forgotten user or personality not stored"
        log.info(event, job_id=job_id, turns=len(stored.turns))
        return stored

    async def get_history(
        self,
        channel_id: str,
        personality_id: str,
        limit: int = 0,
        before: datetime | None = None,
    ) -> list[StoredTurn]:
        """The newest `limit` turns (0: the default) older than `before`, oldest first."""
        return (await self.get_history_page(channel_id, personality_id, limit, before)).turns

    async def get_history_page(
        self,
        channel_id: str,
        personality_id: str,
        limit: int = 0,
        before: datetime | None = None,
        *,
        max_tokens: int = 0,
        page_token: str = "",
        whole_channel: bool = False,
    ) -> HistoryPage:
        """The newest turns, oldest first: at most `limit` (0: the default), and when
        `max_tokens` > 0 only the newest ones whose estimated tokens fit in it.

        `page_token` (a previous page's next_page_token) continues just before that page,
        even inside an exchange the page cut; `before` (a time) cannot, and is exclusive
        with it. The page carries a next_page_token when older turns remain.
        `whole_channel` (group channels): every personality's turns in the channel.
        """
        check_id("channel_id", channel_id)
        if whole_channel:
            personality_id = ""
        else:
            check_id("personality_id", personality_id)
        size = check_history_limit(limit, self._default_limit)
        budget = check_max_tokens(max_tokens)
        cursor = decode_cursor(page_token) if page_token else None
        if cursor is not None and before is not None:
            raise InvalidArgument("page_token", "set page_token or before, not both")
        # One turn more than the page tells whether older turns remain.
        fetched = await self._store.history(channel_id, personality_id, size + 1, before, cursor)
        newest_first = fetched[::-1][:size]
        if budget:
            newest_first = newest_within(newest_first, budget)
        page = newest_first[::-1]
        more = len(page) < len(fetched) and bool(page)
        token = encode_cursor(HistoryCursor.after(page[0])) if more else ""
        return HistoryPage(turns=page, next_page_token=token)

    async def prune_history(self, older_than: datetime | None) -> int:
        """Retention: deletes every turn created before `older_than` (not in the future)."""
        if older_than is None:
            raise InvalidArgument("older_than", "older_than is required")
        if older_than > datetime.now(UTC):
            raise InvalidArgument("older_than", "older_than must not be in the future")
        deleted = await self._store.prune(older_than)
        log.info("history pruned", older_than=older_than.isoformat(), deleted=deleted)
        return deleted

    async def find_turns_by_message_id(self, message_ids: Sequence[str]) -> list[StoredTurn]:
        """Turns posted as any of the given Discord messages, oldest first."""
        return await self._store.find_by_message_ids(check_lookup_ids(message_ids))

    async def edit_turn(self, message_id: str, content: str, job_id: str = "") -> StoredTurn:
        """A Discord message was edited: the turn posted as it (of `job_id`'s exchange, when
        set; else the newest) takes the new content, whole: the caller composes it."""
        check_id("message_id", message_id)
        check_id("job_id", job_id, required=False)
        check_content("content", content)
        turn = await self._store.edit_content(message_id, content, job_id)
        if turn is None:
            raise NotFound("no turn was posted as this message", reason="TURN_NOT_FOUND")
        return turn

    async def delete_turns(self, message_ids: Sequence[str]) -> int:
        """Discord messages were deleted: so are the turns posted as any of them."""
        return await self._store.delete_by_message_ids(check_lookup_ids(message_ids))

    async def clear_turns(self, channel_id: str, personality_id: str, user_id: str = "") -> int:
        """Deletes the history of one conversation: only the turns of `user_id`'s exchanges,
        or every user's when it is empty; the count of turns deleted."""
        check_id("channel_id", channel_id)
        check_id("personality_id", personality_id)
        check_id("user_id", user_id, required=False)
        deleted = await self._store.clear(channel_id, personality_id, user_id)
        log.info("history cleared", channel_id=channel_id, one_user=bool(user_id), deleted=deleted)
        return deleted

    async def remove_last_exchange(
        self, channel_id: str, personality_id: str, user_id: str
    ) -> list[StoredTurn]:
        """Deletes the user's newest exchange in the conversation; its turns (maybe none)."""
        check_id("channel_id", channel_id)
        check_id("personality_id", personality_id)
        check_id("user_id", user_id)
        return await self._store.remove_last_exchange(channel_id, personality_id, user_id)

    async def export_user(self, user_id: str) -> list[StoredTurn]:
        """Every turn of the user's exchanges, oldest first (the data export)."""
        check_id("user_id", user_id)
        found = await self._store.user_turns(user_id)
        log.info("user turns exported", user_id=user_id, turns=len(found))
        return found
