"""gRPC adapters for the ports inference calls: memory (history, long-term memories) and
keyvault (Decrypt)."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from pydantic import SecretStr

from tzurot.inference import convert
from tzurot.inference.domain import HistoryTurn, MemoryItem
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc


class GrpcHistory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = mem_grpc.MemoryServiceStub(channel)

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        try:
            reply = await self._stub.GetHistory(
                mem.GetHistoryRequest(
                    channel_id=channel_id,
                    personality_id=personality_id,
                    limit=limit,
                    whole_channel=whole_channel,
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="memory") from None
        turns = (convert.history_turn(turn) for turn in reply.turns)
        return [turn for turn in turns if turn is not None]


class GrpcMemories:
    """QueryMemories; any failure (UNIMPLEMENTED included) is raised: the caller degrades."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = mem_grpc.MemoryServiceStub(channel)

    async def relevant_memories(
        self,
        *,
        personality_id: str,
        user_id: str,
        query: str,
        limit: int,
        threshold: float,
        exclude_after: datetime | None,
    ) -> list[MemoryItem]:
        request = mem.QueryMemoriesRequest(
            personality_id=personality_id,
            user_id=user_id,
            query=query,
            limit=limit,
            threshold=threshold,
        )
        if exclude_after is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(exclude_after)
            request.exclude_after.CopyFrom(stamp)
        try:
            reply = await self._stub.QueryMemories(request)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="memory") from None
        return [convert.memory_item(memory) for memory in reply.memories]

    async def remember(
        self, personality_id: str, text: str, *, tags: tuple[str, ...], on_behalf_of: str
    ) -> str:
        """AddMemory in the personality's shared lore (user ''), e.g. web research findings,
        found in `on_behalf_of`'s turn (refused INCOGNITO while that user is incognito)."""
        memory = common.Memory(
            personality_id=personality_id,
            user_id="",
            text=text,
            sector=common.MEMORY_SECTOR_SEMANTIC,
            tags=list(tags),
        )
        try:
            reply = await self._stub.AddMemory(
                mem.AddMemoryRequest(memory=memory, on_behalf_of_user_id=on_behalf_of)
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return reply.memory.id


class GrpcKeyVault:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = kv_grpc.KeyVaultServiceStub(channel)

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        try:
            reply = await self._stub.Decrypt(kv.DecryptRequest(user_id=user_id, provider=provider))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_rpc_error(exc, service="keyvault") from None
        return SecretStr(reply.api_key)
