"""History and memory RPCs (on the user's behalf)."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.gateway.turn_edits import MessageEdit
from tzurot.v1 import gateway_pb2 as gw


class MemoryRpcs(AdminRpcs):
    async def ClearHistory(
        self, request: gw.ClearHistoryRequest, context: Context
    ) -> gw.ClearHistoryResponse:
        deleted = await self._admin.clear_history(
            await self._who(request),
            convert.location(request.location),
            request.personality,
            everyone=request.everyone,
            manage_channels=request.manage_channels,
        )
        return gw.ClearHistoryResponse(deleted_turns=deleted)

    async def UndoLastExchange(
        self, request: gw.UndoLastExchangeRequest, context: Context
    ) -> gw.UndoLastExchangeResponse:
        removed = await self._admin.undo_last_exchange(
            await self._who(request), convert.location(request.location), request.personality
        )
        return gw.UndoLastExchangeResponse(removed=[ac.turn(t) for t in removed])

    async def DeleteExchange(
        self, request: gw.DeleteExchangeRequest, context: Context
    ) -> gw.DeleteExchangeResponse:
        removed = await self._admin.delete_exchange(await self._who(request), request.message_id)
        return gw.DeleteExchangeResponse(removed=[ac.turn(t) for t in removed])

    async def SearchMemories(
        self, request: gw.SearchMemoriesRequest, context: Context
    ) -> gw.SearchMemoriesResponse:
        reply = await self._admin.search_memories(
            await self._who(request), request.personality, request.query, request.limit
        )
        return gw.SearchMemoriesResponse(memories=list(reply.memories))

    async def BrowseMemories(
        self, request: gw.BrowseMemoriesRequest, context: Context
    ) -> gw.BrowseMemoriesResponse:
        found, page, pages, total, size = await self._admin.browse_memories(
            await self._who(request), request.personality, request.page, request.page_size
        )
        return gw.BrowseMemoriesResponse(
            memories=found, page=page, pages=pages, total=total, page_size=size
        )

    async def ForgetMemory(
        self, request: gw.ForgetMemoryRequest, context: Context
    ) -> gw.ForgetMemoryResponse:
        forgotten = await self._admin.forget_memory(
            await self._who(request), request.personality, request.memory_id
        )
        return gw.ForgetMemoryResponse(memory=forgotten)

    async def PruneMemories(
        self, request: gw.PruneMemoriesRequest, context: Context
    ) -> gw.PruneMemoriesResponse:
        reply = await self._admin.prune_memories(
            await self._who(request), request.personality, request.threshold
        )
        return gw.PruneMemoriesResponse(deleted=reply.deleted)

    async def GetMemoryStats(
        self, request: gw.GetMemoryStatsRequest, context: Context
    ) -> gw.GetMemoryStatsResponse:
        reply, mode = await self._admin.memory_stats(await self._who(request), request.personality)
        return gw.GetMemoryStatsResponse(
            total=reply.total,
            sectors=[gw.SectorCount(sector=s.sector, count=s.count) for s in reply.sectors],
            oldest=reply.oldest if reply.HasField("oldest") else None,
            newest=reply.newest if reply.HasField("newest") else None,
            incognito_until=mode.incognito_until if mode.HasField("incognito_until") else None,
            fresh_since=mode.fresh_since if mode.HasField("fresh_since") else None,
        )

    async def SetIncognito(
        self, request: gw.SetIncognitoRequest, context: Context
    ) -> gw.SetIncognitoResponse:
        until = await self._admin.set_incognito(
            await self._who(request), request.personality, on=request.on, hours=request.hours
        )
        return gw.SetIncognitoResponse(
            incognito_until=None if until is None else convert.timestamp(until)
        )

    async def StartFresh(
        self, request: gw.StartFreshRequest, context: Context
    ) -> gw.StartFreshResponse:
        since = await self._admin.start_fresh(
            await self._who(request), request.personality, undo=request.undo
        )
        return gw.StartFreshResponse(
            fresh_since=None if since is None else convert.timestamp(since)
        )

    async def EditMessage(
        self, request: gw.EditMessageRequest, context: Context
    ) -> gw.EditMessageResponse:
        files = list(request.attachment_urls) if request.attachments_listed else None
        edit = MessageEdit(request.content, files)
        await self._admin.edit_message(await self._who(request), request.message_id, edit)
        return gw.EditMessageResponse()
