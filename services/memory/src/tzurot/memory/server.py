"""MemoryService over gRPC: thin. Convert the request, call the use-case, convert the reply.

Domain errors (tzurot.runtime.errors) propagate to the runtime's interceptor, which maps
them to rich statuses. Authorization per method is the server's policy (see app.py).
StoreExchange wakes the formation worker, which forms long-term memories off the
request path (formation.py).
"""

from __future__ import annotations

import grpc

from tzurot.memory import convert
from tzurot.memory.browse import MemoryBrowser
from tzurot.memory.facts import Facts, NewFact
from tzurot.memory.forget_personality import PersonalityForgetter
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.reply_context import ReplyContextReader
from tzurot.memory.service import History
from tzurot.runtime.errors import Unimplemented
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

Context = grpc.aio.ServicerContext[object, object]


class MemoryServicer(mem_grpc.MemoryServiceServicer):
    def __init__(
        self,
        history: History,
        longterm: LongTermMemory,
        formation: Formation | None = None,
        browser: MemoryBrowser | None = None,
        facts: Facts | None = None,
        *,
        forgetter: PersonalityForgetter | None = None,
        user_forgetter: UserForgetter | None = None,
    ) -> None:
        self._history = history
        self._longterm = longterm
        self._formation = formation
        self._browser = browser
        self._facts = facts
        self._forgetter = forgetter
        self._user_forgetter = user_forgetter
        self._reply_context = ReplyContextReader(history, longterm)

    async def ListMemories(
        self, request: mem.ListMemoriesRequest, context: Context
    ) -> mem.ListMemoriesResponse:
        found, total = await self._browse().page(
            request.personality_id, request.user_id, limit=request.limit, offset=request.offset
        )
        return mem.ListMemoriesResponse(memories=[convert.memory(m) for m in found], total=total)

    async def DeleteMemory(
        self, request: mem.DeleteMemoryRequest, context: Context
    ) -> mem.DeleteMemoryResponse:
        deleted = await self._browse().delete(
            request.personality_id, request.user_id, request.memory_id
        )
        if deleted is None:
            return mem.DeleteMemoryResponse(deleted=False)
        return mem.DeleteMemoryResponse(deleted=True, memory=convert.memory(deleted))

    def _browse(self) -> MemoryBrowser:
        if self._browser is None:
            raise Unimplemented("browsing memories is not wired here")
        return self._browser

    async def StoreExchange(
        self, request: mem.StoreExchangeRequest, context: Context
    ) -> mem.StoreExchangeResponse:
        stored = await self._history.store_exchange(
            request.job_id,
            request.channel_id,
            request.personality_id,
            request.user_id,
            [convert.new_turn(turn) for turn in request.turns],
            occurred_at=convert.optional_datetime(request, "occurred_at"),
            used_memory_ids=list(request.used_memory_ids),
            extract_facts=request.extract_facts,
            imported=request.imported,
        )
        if stored.created and self._formation is not None:
            self._formation.kick()
        return mem.StoreExchangeResponse(turns=convert.turns(stored.turns), created=stored.created)

    async def GetHistory(
        self, request: mem.GetHistoryRequest, context: Context
    ) -> mem.GetHistoryResponse:
        page = await self._history.get_history_page(
            request.channel_id,
            request.personality_id,
            request.limit,
            convert.optional_datetime(request, "before"),
            max_tokens=request.max_tokens,
            page_token=request.page_token,
            whole_channel=request.whole_channel,
        )
        return mem.GetHistoryResponse(
            turns=convert.turns(page.turns), next_page_token=page.next_page_token
        )

    async def PruneHistory(
        self, request: mem.PruneHistoryRequest, context: Context
    ) -> mem.PruneHistoryResponse:
        deleted = await self._history.prune_history(
            convert.optional_datetime(request, "older_than")
        )
        return mem.PruneHistoryResponse(deleted=deleted)

    async def FindTurnsByMessageId(
        self, request: mem.FindTurnsByMessageIdRequest, context: Context
    ) -> mem.FindTurnsByMessageIdResponse:
        turns = await self._history.find_turns_by_message_id(list(request.message_ids))
        return mem.FindTurnsByMessageIdResponse(turns=convert.turns(turns))

    async def EditTurn(
        self, request: mem.EditTurnRequest, context: Context
    ) -> mem.EditTurnResponse:
        turn = await self._history.edit_turn(request.message_id, request.content, request.job_id)
        return mem.EditTurnResponse(turn=convert.turn(turn))

    async def DeleteTurns(
        self, request: mem.DeleteTurnsRequest, context: Context
    ) -> mem.DeleteTurnsResponse:
        deleted = await self._history.delete_turns(list(request.message_ids))
        return mem.DeleteTurnsResponse(deleted=deleted)

    async def ClearTurns(
        self, request: mem.ClearTurnsRequest, context: Context
    ) -> mem.ClearTurnsResponse:
        deleted = await self._history.clear_turns(
            request.channel_id, request.personality_id, request.user_id
        )
        return mem.ClearTurnsResponse(deleted=deleted)

    async def RemoveLastExchange(
        self, request: mem.RemoveLastExchangeRequest, context: Context
    ) -> mem.RemoveLastExchangeResponse:
        removed = await self._history.remove_last_exchange(
            request.channel_id, request.personality_id, request.user_id
        )
        return mem.RemoveLastExchangeResponse(removed=convert.turns(removed))

    async def ForgetUser(
        self, request: mem.ForgetUserRequest, context: Context
    ) -> mem.ForgetUserResponse:
        if self._user_forgetter is None:
            raise Unimplemented("forgetting users is not wired here")
        forgotten = await self._user_forgetter.forget(request.user_id)
        return mem.ForgetUserResponse(
            deleted_turns=forgotten.deleted_turns, deleted_memories=forgotten.deleted_memories
        )

    async def ForgetPersonality(
        self, request: mem.ForgetPersonalityRequest, context: Context
    ) -> mem.ForgetPersonalityResponse:
        if self._forgetter is None:
            raise Unimplemented("forgetting personalities is not wired here")
        forgotten = await self._forgetter.forget(request.personality_id)
        return mem.ForgetPersonalityResponse(
            deleted_turns=forgotten.deleted_turns, deleted_memories=forgotten.deleted_memories
        )

    async def ExportUser(
        self, request: mem.ExportUserRequest, context: Context
    ) -> mem.ExportUserResponse:
        turns = await self._history.export_user(request.user_id)
        memories = await self._longterm.export_user(request.user_id)
        modes = await self._longterm.export_modes(request.user_id)
        return mem.ExportUserResponse(
            turns=convert.turns(turns),
            memories=[convert.memory(m) for m in memories],
            modes=[
                mem.UserMemoryMode(personality_id=p, mode=convert.memory_mode(mode))
                for p, mode in modes
            ],
        )

    async def QueryMemories(
        self, request: mem.QueryMemoriesRequest, context: Context
    ) -> mem.QueryMemoriesResponse:
        found = await self._longterm.query(
            request.personality_id,
            request.user_id,
            request.query,
            limit=request.limit,
            threshold=request.threshold,
            no_threshold=request.no_threshold,
            exclude_after=convert.optional_datetime(request, "exclude_after"),
        )
        return mem.QueryMemoriesResponse(memories=[convert.memory(m) for m in found])

    async def GetReplyContext(
        self, request: mem.GetReplyContextRequest, context: Context
    ) -> mem.GetReplyContextResponse:
        found = await self._reply_context.read(convert.reply_context_query(request))
        return convert.reply_context(found)

    async def AddMemory(
        self, request: mem.AddMemoryRequest, context: Context
    ) -> mem.AddMemoryResponse:
        given = request.memory
        added = await self._longterm.add(
            given.personality_id,
            given.user_id,
            given.text,
            sector=convert.sector_name(given.sector),
            salience=given.salience,
            source_turn_ids=list(given.source_turn_ids),
            memory_id=given.id,
            created_at=convert.optional_datetime(given, "created_at"),
            tags=list(given.tags),
            on_behalf_of=request.on_behalf_of_user_id,
        )
        return mem.AddMemoryResponse(
            memory=convert.memory(added.memory), merged=added.merged, existed=added.existed
        )

    async def DropWeakMemories(
        self, request: mem.DropWeakMemoriesRequest, context: Context
    ) -> mem.DropWeakMemoriesResponse:
        deleted = await self._longterm.drop_weak(
            request.personality_id, request.user_id, request.threshold
        )
        return mem.DropWeakMemoriesResponse(deleted=deleted)

    async def CountMemories(
        self, request: mem.CountMemoriesRequest, context: Context
    ) -> mem.CountMemoriesResponse:
        stats = await self._longterm.stats(request.personality_id, request.user_id)
        reply = mem.CountMemoriesResponse(
            total=stats.total,
            sectors=[
                mem.SectorTally(sector=convert.sector(name), count=count)
                for name, count in sorted(stats.sectors.items())
            ],
        )
        if stats.oldest is not None:
            reply.oldest.CopyFrom(convert.timestamp(stats.oldest))
        if stats.newest is not None:
            reply.newest.CopyFrom(convert.timestamp(stats.newest))
        return reply

    async def Consolidate(
        self, request: mem.ConsolidateRequest, context: Context
    ) -> mem.ConsolidateResponse:
        done = await self._longterm.consolidate()
        return mem.ConsolidateResponse(
            decayed=done.decayed,
            pruned=done.pruned,
            merged=done.merged,
            reflections=done.reflections,
            reinforced=done.reinforced,
        )

    async def SetMemoryMode(
        self, request: mem.SetMemoryModeRequest, context: Context
    ) -> mem.SetMemoryModeResponse:
        mode = await self._longterm.set_mode(
            request.personality_id,
            request.user_id,
            incognito_until=convert.optional_datetime(request.mode, "incognito_until"),
            fresh_since=convert.optional_datetime(request.mode, "fresh_since"),
        )
        return mem.SetMemoryModeResponse(mode=convert.memory_mode(mode))

    async def GetMemoryMode(
        self, request: mem.GetMemoryModeRequest, context: Context
    ) -> mem.GetMemoryModeResponse:
        mode = await self._longterm.mode(request.personality_id, request.user_id)
        return mem.GetMemoryModeResponse(mode=convert.memory_mode(mode))

    async def ClaimFactJobs(
        self, request: mem.ClaimFactJobsRequest, context: Context
    ) -> mem.ClaimFactJobsResponse:
        if self._facts is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "facts are not served here")
            raise AssertionError  # abort raises
        batches = await self._facts.claim(request.limit, request.lease_seconds)
        return mem.ClaimFactJobsResponse(
            batches=[
                mem.FactBatch(
                    personality_id=batch.scope.personality_id,
                    user_id=batch.scope.user_id,
                    job_ids=batch.job_ids,
                    turns=convert.turns(batch.turns),
                    known_facts=[convert.memory(m) for m in batch.known_facts],
                    claim_token=batch.claim,
                )
                for batch in batches
            ]
        )

    async def StoreFacts(
        self, request: mem.StoreFactsRequest, context: Context
    ) -> mem.StoreFactsResponse:
        if self._facts is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "facts are not served here")
            raise AssertionError  # abort raises
        stored, superseded = await self._facts.store(
            request.personality_id,
            request.user_id,
            list(request.job_ids),
            [NewFact(fact.text, tuple(fact.supersedes)) for fact in request.facts],
            request.claim_token,
        )
        return mem.StoreFactsResponse(
            facts=[convert.memory(m) for m in stored], superseded=superseded
        )
