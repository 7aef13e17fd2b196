"""What a reply reads from memory, in one call (GetReplyContext): the conversation's recent
turns and the long-term memories relevant to the message. No gRPC here.

Inference used to ask twice (GetHistory, then QueryMemories excluding what the turns hold);
here the turns are read while the query is embedded, and the search then excludes memories
created at or after the oldest turn read, as inference did (its full-text pool is read while
the embedding, if it is still running, finishes). A failing search (a bad query,
the embedder down) leaves the turns: the reply goes without memories (`memories_unavailable`),
as it did when QueryMemories failed. A failing history read fails the call.
"""

from __future__ import annotations

import asyncio

import structlog

from tzurot.memory.domain import ReplyContext, ReplyContextQuery, StoredTurn
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_checks import MemorySearch, memory_search
from tzurot.memory.service import History
from tzurot.memory.validation import MAX_ID_CHARS
from tzurot.runtime.errors import InvalidArgument, TzurotError

log = structlog.get_logger("tzurot.memory")


class ReplyContextReader:
    def __init__(self, history: History, longterm: LongTermMemory) -> None:
        self._history = history
        self._longterm = longterm

    async def read(self, ask: ReplyContextQuery) -> ReplyContext:
        if len(ask.query_author) > MAX_ID_CHARS:  # as a stored turn's author_name
            raise InvalidArgument(
                "query_author", f"query_author must be at most {MAX_ID_CHARS} characters"
            )
        if not ask.query:
            return ReplyContext(await self._turns(ask), [])
        search = self._search(ask)
        if search is None:
            return ReplyContext(await self._turns(ask), [], memories_unavailable=True)
        embedding = asyncio.ensure_future(self._longterm.embed_query(search, ask.query_author))
        try:
            turns = await self._turns(ask)
        except BaseException:
            embedding.cancel()
            raise
        stamps = [turn.created_at for turn in turns]
        try:
            # Known already: both pools in one statement. Still running: the full-text pool
            # is read meanwhile.
            vector = embedding.result() if embedding.done() else embedding
            found = await self._longterm.search(search, vector, min(stamps) if stamps else None)
        except TzurotError as err:
            _unavailable(ask.personality_id, err)
            return ReplyContext(turns, [], memories_unavailable=True)
        return ReplyContext(turns, found)

    async def _turns(self, ask: ReplyContextQuery) -> list[StoredTurn]:
        page = await self._history.get_history_page(
            ask.channel_id, ask.personality_id, ask.history_limit, whole_channel=ask.whole_channel
        )
        return page.turns

    def _search(self, ask: ReplyContextQuery) -> MemorySearch | None:
        """The checked search; None when it is refused (logged)."""
        try:
            return memory_search(
                ask.personality_id,
                ask.user_id,
                ask.query,
                limit=ask.memory_limit,
                threshold=ask.threshold,
            )
        except TzurotError as err:
            _unavailable(ask.personality_id, err)
            return None


def _unavailable(personality_id: str, err: TzurotError) -> None:
    log.warning(
        "reply context: memory search failed",
        code=err.code.name,
        reason=err.reason,
        personality_id=personality_id,
    )
