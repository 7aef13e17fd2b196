"""What a reply reads of its conversation: the recent history (a group's as this
personality sees it, without the exchange a 🔄 replaces) and the relevant long-term
memories, in one call to memory when it can; what memory cannot give is gone without
(degraded), not a failed reply."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from tzurot.inference.domain import (
    HISTORY_UNAVAILABLE,
    MEMORY_UNAVAILABLE,
    HistoryTurn,
    MemoryItem,
    ReplyContextQuery,
    ReplyRequest,
)
from tzurot.inference.group_view import group_history
from tzurot.inference.memory_query import memory_query
from tzurot.inference.ports import HistorySource, MemorySource, ReplyContextSource
from tzurot.inference.reply_settings import ReplySettings
from tzurot.runtime import metrics
from tzurot.runtime.errors import TzurotError

MAX_HISTORY_MESSAGES = 500
"""The most turns one prompt asks memory for (memory's own cap)."""
REPLACED_TURNS = 2
"""The turns of one exchange at most (the user's message, the answer): a 🔄's prompt asks
memory for this many more, as it leaves out those of the exchange it replaces."""
DEFAULT_MEMORY_LIMIT = 10

log = structlog.get_logger("tzurot.inference.service")  # the name its events always had


class NoMemories:
    """A MemorySource for when long-term memory is not wired."""

    async def relevant_memories(self, **_: object) -> list[MemoryItem]:
        return []


class ContextReading:
    """The context methods of `Inference`."""

    _settings: ReplySettings
    _history: HistorySource
    _memories: MemorySource
    _context: ReplyContextSource | None

    async def _read_context(
        self, request: ReplyRequest
    ) -> tuple[list[HistoryTurn], list[MemoryItem], tuple[str, ...]]:
        """The history (a group's as this personality sees it), the relevant memories, and
        what the answer goes without. One call to memory when the message is the query (it
        has text, and there is history to read); else the history, then the memories for
        a query found in it (a scheduled turn's)."""
        ask = self._context_query(request)
        if ask is None or self._context is None:
            history, history_degraded = await self._history_or_degraded(request)
            history = self._group_view(request, history)
            memories, degraded = await self._relevant_memories(request, history)
            return history, memories, history_degraded + degraded
        try:
            found = await self._context.reply_context(ask)
        except TzurotError as err:
            _unavailable("history.unavailable", err, request)
            _unavailable("memory.unavailable", err, request)
            metrics.record_degraded(HISTORY_UNAVAILABLE)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return [], [], (HISTORY_UNAVAILABLE, MEMORY_UNAVAILABLE)
        turns = without_replaced(found.turns, request, self._history_limit(request))
        history = self._group_view(request, turns)
        if found.memories_unavailable:
            log.warning("memory.unavailable", personality_id=request.character.id)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return history, [], (MEMORY_UNAVAILABLE,)
        return history, found.memories, ()

    def _context_query(self, request: ReplyRequest) -> ReplyContextQuery | None:
        limit = self._history_limit(request)
        query = request.content.strip()
        if not limit or not request.channel_id or not request.character.id or not query:
            return None
        return ReplyContextQuery(
            channel_id=request.channel_id,
            personality_id=request.character.id,
            history_limit=_read_limit(request, limit),
            user_id=request.memory_user_id,
            query=memory_query(query),
            memory_limit=request.memory_limit or DEFAULT_MEMORY_LIMIT,
            threshold=request.memory_threshold,
            whole_channel=request.whole_channel,
            # The user's turn is stored under the request's author name (gateway).
            query_author=request.author_name,
        )

    @staticmethod
    def _group_view(request: ReplyRequest, history: list[HistoryTurn]) -> list[HistoryTurn]:
        if not request.whole_channel:
            return history
        return group_history(history, request.character.id, request.group)

    def _history_limit(self, request: ReplyRequest) -> int:
        """How many turns the prompt asks for; 0: none."""
        limit = request.max_history_messages or self._settings.history_limit
        return min(limit, MAX_HISTORY_MESSAGES) if limit > 0 else 0

    async def _history_or_degraded(
        self, request: ReplyRequest
    ) -> tuple[list[HistoryTurn], tuple[str, ...]]:
        """The recent history; when memory cannot give it the answer goes without (degraded:
        logged and counted), as for long-term memory, rather than not at all."""
        try:
            return await self._recent_history(request), ()
        except TzurotError as err:
            _unavailable("history.unavailable", err, request)
            metrics.record_degraded(HISTORY_UNAVAILABLE)
            return [], (HISTORY_UNAVAILABLE,)

    async def _recent_history(self, request: ReplyRequest) -> list[HistoryTurn]:
        limit = self._history_limit(request)
        if not limit or not request.channel_id or not request.character.id:
            return []
        read = _read_limit(request, limit)
        if request.whole_channel:
            turns = await self._history.recent_turns(
                request.channel_id, request.character.id, read, whole_channel=True
            )
        else:
            turns = await self._history.recent_turns(request.channel_id, request.character.id, read)
        return without_replaced(turns, request, limit)

    async def _relevant_memories(
        self, request: ReplyRequest, history: Sequence[HistoryTurn]
    ) -> tuple[list[MemoryItem], tuple[str, ...]]:
        """The memories for the prompt, and what is missing: a failing memory service leaves
        the answer without long-term memory (degraded: logged and counted), not unanswered.

        A scheduled turn has no message: the query is the latest one in the channel, or its
        directive."""
        query = request.content.strip() or next(
            (t.content for t in reversed(history) if t.content.strip()), request.directive
        )
        if not request.character.id or not query.strip():
            return [], ()
        stamps = [turn.created_at for turn in history if turn.created_at is not None]
        try:
            found = await self._memories.relevant_memories(
                personality_id=request.character.id,
                user_id=request.memory_user_id,
                query=memory_query(query),
                limit=request.memory_limit or DEFAULT_MEMORY_LIMIT,
                threshold=request.memory_threshold,
                exclude_after=min(stamps) if stamps else None,
            )
        except TzurotError as err:
            _unavailable("memory.unavailable", err, request)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return [], (MEMORY_UNAVAILABLE,)
        return found, ()


def _read_limit(request: ReplyRequest, limit: int) -> int:
    """The turns asked of memory for a prompt of `limit`: a 🔄's reads the exchange it
    replaces on top, as it leaves it out."""
    if not request.replaces_job_id:
        return limit
    return min(limit + REPLACED_TURNS, MAX_HISTORY_MESSAGES)


def without_replaced(
    turns: Sequence[HistoryTurn], request: ReplyRequest, limit: int
) -> list[HistoryTurn]:
    """The newest `limit` turns, without those of the exchange a 🔄 replaces: it stays in
    history until the new answer is delivered, and is not part of the conversation the new
    answer follows."""
    if not request.replaces_job_id:
        return list(turns)
    kept = [turn for turn in turns if turn.job_id != request.replaces_job_id]
    return kept[-limit:] if limit > 0 else []


def _unavailable(event: str, err: TzurotError, request: ReplyRequest) -> None:
    log.warning(event, code=err.code.name, reason=err.reason, personality_id=request.character.id)
