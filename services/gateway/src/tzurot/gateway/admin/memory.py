"""History and memory on the user's behalf: clear, undo, delete an exchange, search, prune
and count long-term memories (memory service's RPCs behind the gateway's checks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tzurot.gateway.admin.base import AdminBase, Principal, limit_text, managed_channel, require
from tzurot.gateway.domain import HistoryTurn, Location
from tzurot.gateway.exchanges import delete_exchange
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.turn_edits import MessageEdit, edited_turn
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

MAX_INCOGNITO_HOURS = 720
MAX_EDIT_CHARS = 16_000
EMPTIED = "[the message's text was removed]"
"""A user turn the edit leaves nothing (another exchange of the message kept something)."""
DEFAULT_BROWSE_PAGE = 10
MAX_BROWSE_PAGE = 25
MAX_BROWSE_PAGES = 10_000


class MemoryAdmin(AdminBase):
    async def clear_history(
        self,
        who: Principal,
        where: Location,
        name: str,
        *,
        everyone: bool = False,
        manage_channels: bool = False,
    ) -> int:
        """Forgets the actor's exchanges with `name` here; `everyone`: every user's, which
        needs Manage Channels (`managed_channel`). The count of turns deleted."""
        conversation = require("location.channel_id", where.conversation_id)
        if everyone:
            managed_channel(who, where, manage_channels)
            user_id = None
        else:
            user_id = who.require_user().id
        personality = await self._personality(name, who)
        return await self._memory.clear_turns(conversation, personality.id, user_id)

    async def undo_last_exchange(
        self, who: Principal, where: Location, name: str
    ) -> list[HistoryTurn]:
        user = who.require_user()
        conversation = require("location.channel_id", where.conversation_id)
        personality = await self._personality(name, who)
        return await self._memory.remove_last_exchange(conversation, personality.id, user.id)

    async def edit_message(self, who: Principal, message_id: str, edit: MessageEdit) -> None:
        """The author edited a message a personality answered: every user turn posted as it
        (one for each exchange the message started) takes the edited text, and keeps what was
        read of the files still shown (turn_edits.py), each from its own job. A turn the edit
        would leave empty names the files still shown instead (never keeping the removed
        text), or, with none, says its text was removed; if every one would be empty,
        INVALID_ARGUMENT `content`: the message says nothing."""
        user = who.require_user()
        require("message_id", message_id)
        limit_text("content", edit.content, MAX_EDIT_CHARS)
        turns = [t for t in await self._memory.find_turns([message_id]) if t.role == "user"]
        if not turns:
            raise NotFound("no turn was posted as this message", reason="TURN_NOT_FOUND")
        if not who.superuser and any(t.author_id != user.platform_user_id for t in turns):
            raise PermissionDenied("only the message's author may edit it", reason="NOT_AUTHOR")
        edited = [(turn.job_id, await self._edited(turn.job_id, edit)) for turn in turns]
        if not any(content.strip() for _, content in edited):
            raise InvalidArgument("content", "the edited message is empty")
        for job_id, content in edited:
            kept = content if content.strip() else EMPTIED
            await self._memory.edit_turn(message_id, kept, job_id=job_id)

    async def _edited(self, job_id: str, edit: MessageEdit) -> str:
        """The user turn of `job_id`'s exchange after `edit`; with no job row (gone while its
        turns stay) the text alone."""
        found = await self._store.get_job_with_context(job_id) if is_uuid(job_id) else None
        if found is None:
            return edit.content
        return edited_turn(edit, *found)

    async def delete_exchange(self, who: Principal, message_id: str) -> list[HistoryTurn]:
        """❌/🔄 on any answer: its exchange leaves history (exchanges.py)."""
        return await delete_exchange(self._store, self._memory, who.require_user(), message_id)

    async def search_memories(
        self, who: Principal, name: str, query: str, limit: int
    ) -> mem.QueryMemoriesResponse:
        user = who.require_user()
        require("query", query, 2000)
        if not 0 <= limit <= 100:
            raise InvalidArgument("limit", "limit is between 1 and 100 (0 for the default)")
        personality = await self._personality(name, who)
        return await self._memory.query_memories(
            mem.QueryMemoriesRequest(
                personality_id=personality.id, user_id=user.id, query=query, limit=limit or 10
            )
        )

    async def browse_memories(
        self, who: Principal, name: str, page: int, page_size: int
    ) -> tuple[list[common.Memory], int, int, int, int]:
        """One page of the actor's memories of `name`, newest first: (memories, page, pages,
        total, page size). A page past the end shows the last one."""
        user = who.require_user()
        size = page_size or DEFAULT_BROWSE_PAGE
        if not 1 <= size <= MAX_BROWSE_PAGE:
            raise InvalidArgument("page_size", f"page_size is from 1 to {MAX_BROWSE_PAGE}")
        if not 0 <= page <= MAX_BROWSE_PAGES:
            raise InvalidArgument("page", f"page is from 1 to {MAX_BROWSE_PAGES}")
        personality = await self._personality(name, who)
        page = max(page, 1)

        async def one(number: int) -> mem.ListMemoriesResponse:
            return await self._memory.list_memories(
                mem.ListMemoriesRequest(
                    personality_id=personality.id,
                    user_id=user.id,
                    limit=size,
                    offset=(number - 1) * size,
                )
            )

        found = await one(page)
        pages = max(1, -(-found.total // size))
        if page > pages:
            page = pages
            found = await one(page)
        return list(found.memories), page, pages, found.total, size

    async def forget_memory(self, who: Principal, name: str, memory_id: str) -> common.Memory:
        """Deletes one of the actor's memories of `name`; NOT_FOUND when it is not theirs."""
        user = who.require_user()
        require("memory_id", memory_id, 100)
        personality = await self._personality(name, who)
        reply = await self._memory.delete_memory(
            mem.DeleteMemoryRequest(
                personality_id=personality.id, user_id=user.id, memory_id=memory_id.strip()
            )
        )
        if not reply.deleted:
            raise NotFound(
                f"{personality.display_name} has no memory {memory_id.strip()!r} of you",
                reason="MEMORY_NOT_FOUND",
            )
        return reply.memory

    async def prune_memories(
        self, who: Principal, name: str, threshold: float
    ) -> mem.DropWeakMemoriesResponse:
        user = who.require_user()
        if not 0.0 < threshold <= 1.0:
            raise InvalidArgument("threshold", "threshold is above 0 and at most 1")
        personality = await self._personality(name, who)
        return await self._memory.drop_weak_memories(
            mem.DropWeakMemoriesRequest(
                personality_id=personality.id, user_id=user.id, threshold=threshold
            )
        )

    async def memory_stats(
        self, who: Principal, name: str
    ) -> tuple[mem.CountMemoriesResponse, mem.MemoryMode]:
        user = who.require_user()
        personality = await self._personality(name, who)
        counted = await self._memory.count_memories(
            mem.CountMemoriesRequest(personality_id=personality.id, user_id=user.id)
        )
        return counted, await self._memory.get_memory_mode(personality.id, user.id)

    # ---- memory modes ----

    async def set_incognito(
        self, who: Principal, name: str, *, on: bool, hours: int, now: datetime | None = None
    ) -> datetime | None:
        """Incognito for `hours` (0: 24) or off; the fresh point is kept. Until when, or None."""
        user = who.require_user()
        if not 0 <= hours <= MAX_INCOGNITO_HOURS:
            raise InvalidArgument("hours", f"hours is from 1 to {MAX_INCOGNITO_HOURS}")
        personality = await self._personality(name, who)
        mode = await self._memory.get_memory_mode(personality.id, user.id)
        mode.ClearField("incognito_until")
        until = None
        if on:
            until = (now or datetime.now(UTC)) + timedelta(hours=hours or 24)
            mode.incognito_until.FromDatetime(until)
        await self._memory.set_memory_mode(personality.id, user.id, mode)
        return until

    async def start_fresh(
        self, who: Principal, name: str, *, undo: bool, now: datetime | None = None
    ) -> datetime | None:
        """Memories from before now are no longer used (undo: all are again); incognito kept."""
        user = who.require_user()
        personality = await self._personality(name, who)
        mode = await self._memory.get_memory_mode(personality.id, user.id)
        mode.ClearField("fresh_since")
        since = None
        if not undo:
            since = now or datetime.now(UTC)
            mode.fresh_since.FromDatetime(since)
        await self._memory.set_memory_mode(personality.id, user.id, mode)
        return since
