"""MemoryService over gRPC: thin. Convert the request, call the use-case, convert the reply.

Domain errors (tzurot.runtime.errors) propagate to the runtime's interceptor, which maps
them to rich statuses. Authorization per method is the server's policy (see app.py).
Long-term memory is not built yet: its RPCs answer UNIMPLEMENTED with a reason.
"""

from __future__ import annotations

import grpc

from tzurot.memory import convert
from tzurot.memory.service import History
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

Context = grpc.aio.ServicerContext[object, object]

LONG_TERM_NOT_BUILT = "LONG_TERM_MEMORY_NOT_BUILT"


def long_term_not_built(method: str) -> TzurotError:
    return TzurotError(
        f"{method}: long-term memory is not built yet",
        reason=LONG_TERM_NOT_BUILT,
        code=grpc.StatusCode.UNIMPLEMENTED,
    )


class MemoryServicer(mem_grpc.MemoryServiceServicer):
    def __init__(self, history: History) -> None:
        self._history = history

    async def StoreExchange(
        self, request: mem.StoreExchangeRequest, context: Context
    ) -> mem.StoreExchangeResponse:
        stored = await self._history.store_exchange(
            request.job_id,
            request.channel_id,
            request.personality_id,
            request.user_id,
            [convert.new_turn(turn) for turn in request.turns],
        )
        return mem.StoreExchangeResponse(turns=convert.turns(stored.turns), created=stored.created)

    async def GetHistory(
        self, request: mem.GetHistoryRequest, context: Context
    ) -> mem.GetHistoryResponse:
        turns = await self._history.get_history(
            request.channel_id,
            request.personality_id,
            request.limit,
            convert.optional_datetime(request, "before"),
        )
        return mem.GetHistoryResponse(turns=convert.turns(turns))

    async def FindTurnsByMessageId(
        self, request: mem.FindTurnsByMessageIdRequest, context: Context
    ) -> mem.FindTurnsByMessageIdResponse:
        turns = await self._history.find_turns_by_message_id(list(request.message_ids))
        return mem.FindTurnsByMessageIdResponse(turns=convert.turns(turns))

    async def EditTurn(
        self, request: mem.EditTurnRequest, context: Context
    ) -> mem.EditTurnResponse:
        turn = await self._history.edit_turn(request.message_id, request.content)
        return mem.EditTurnResponse(turn=convert.turn(turn))

    async def DeleteTurns(
        self, request: mem.DeleteTurnsRequest, context: Context
    ) -> mem.DeleteTurnsResponse:
        deleted = await self._history.delete_turns(list(request.message_ids))
        return mem.DeleteTurnsResponse(deleted=deleted)

    async def ClearTurns(
        self, request: mem.ClearTurnsRequest, context: Context
    ) -> mem.ClearTurnsResponse:
        deleted = await self._history.clear_turns(request.channel_id, request.personality_id)
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
        forgotten = await self._history.forget_user(request.user_id)
        return mem.ForgetUserResponse(
            deleted_turns=forgotten.deleted_turns, deleted_memories=forgotten.deleted_memories
        )

    async def QueryMemories(
        self, request: mem.QueryMemoriesRequest, context: Context
    ) -> mem.QueryMemoriesResponse:
        raise long_term_not_built("QueryMemories")

    async def AddMemory(
        self, request: mem.AddMemoryRequest, context: Context
    ) -> mem.AddMemoryResponse:
        raise long_term_not_built("AddMemory")

    async def DropWeakMemories(
        self, request: mem.DropWeakMemoriesRequest, context: Context
    ) -> mem.DropWeakMemoriesResponse:
        raise long_term_not_built("DropWeakMemories")

    async def CountMemories(
        self, request: mem.CountMemoriesRequest, context: Context
    ) -> mem.CountMemoriesResponse:
        raise long_term_not_built("CountMemories")

    async def Consolidate(
        self, request: mem.ConsolidateRequest, context: Context
    ) -> mem.ConsolidateResponse:
        raise long_term_not_built("Consolidate")
