"""What the history use-cases need from the outside: a store of turns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from tzurot.memory.domain import Exchange, StoredExchange, StoredTurn
from tzurot.memory.paging import HistoryCursor


class TurnStore(Protocol):
    async def store_exchange(self, exchange: Exchange) -> StoredExchange:
        """Stores every turn of the exchange in one transaction, unless its job is stored.

        Concurrent calls for one job never fail: one stores, the others get its turns.
        """
        ...

    async def history(
        self,
        channel_id: str,
        personality_id: str,
        limit: int,
        before: datetime | None = None,
        cursor: HistoryCursor | None = None,
    ) -> list[StoredTurn]:
        """The newest `limit` turns older than `before` and sorting before `cursor`,
        oldest first."""
        ...

    async def prune(self, older_than: datetime) -> int:
        """Deletes every turn created before `older_than`; the count deleted."""
        ...

    async def find_by_message_ids(self, message_ids: Sequence[str]) -> list[StoredTurn]:
        """Turns posted as any of `message_ids`, oldest first."""
        ...

    async def edit_content(
        self, message_id: str, content: str, job_id: str = ""
    ) -> StoredTurn | None:
        """Replaces the content of the (newest) turn posted as `message_id`, only of `job_id`'s
        exchange when it is set; None if none."""
        ...

    async def delete_by_message_ids(self, message_ids: Sequence[str]) -> int: ...

    async def clear(self, channel_id: str, personality_id: str, user_id: str = "") -> int: ...

    async def remove_last_exchange(
        self, channel_id: str, personality_id: str, user_id: str
    ) -> list[StoredTurn]:
        """Deletes every turn of the user's newest exchange in the conversation."""
        ...

    async def user_turns(self, user_id: str) -> list[StoredTurn]:
        """Every turn of the user's exchanges (both sides), oldest first."""
        ...
