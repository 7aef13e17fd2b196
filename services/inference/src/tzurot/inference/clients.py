"""gRPC adapters for the ports inference calls: memory (a reply's context, history,
long-term memories) and keyvault (Decrypt)."""

from __future__ import annotations

from datetime import datetime

import grpc
from pydantic import SecretStr

from tzurot.inference import convert
from tzurot.inference.domain import HistoryTurn, MemoryItem, ReplyContext, ReplyContextQuery
from tzurot.runtime.client import wait_connected
from tzurot.runtime.errors import InvalidArgument, TzurotError, from_rpc_error
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


def query_request(
    *,
    personality_id: str,
    user_id: str,
    query: str,
    limit: int,
    threshold: float,
    exclude_after: datetime | None,
) -> mem.QueryMemoriesRequest:
    """QueryMemories' request for a MemorySource call (bench/floor.py builds it the same)."""
    request = mem.QueryMemoriesRequest(
        personality_id=personality_id,
        user_id=user_id,
        query=query,
        limit=limit,
        threshold=threshold,
    )
    if exclude_after is not None:
        request.exclude_after.FromDatetime(exclude_after)
    return request


def reply_context_request(query: ReplyContextQuery) -> mem.GetReplyContextRequest:
    return mem.GetReplyContextRequest(
        channel_id=query.channel_id,
        personality_id=query.personality_id,
        history_limit=query.history_limit,
        whole_channel=query.whole_channel,
        user_id=query.user_id,
        query=query.query,
        memory_limit=query.memory_limit,
        threshold=query.threshold,
        query_author=query.query_author,
    )


MEMORY_CONNECT_WAIT_SECONDS = 2.0
"""How long a reply waits for its channel to memory to (re)connect before it goes ahead
without history and memories (degraded): memory may have started after inference warmed the
channel, leaving it in reconnect backoff, and the first answer after start should see its
history."""


class GrpcReplyContext:
    """GetReplyContext: a reply's turns and memories in one call. A memory service without
    it (UNIMPLEMENTED: an older version) is asked with GetHistory and QueryMemories instead,
    from then on."""

    def __init__(
        self, channel: grpc.aio.Channel, *, connect_wait: float = MEMORY_CONNECT_WAIT_SECONDS
    ) -> None:
        self._channel = channel
        self._connect_wait = connect_wait
        self._stub = mem_grpc.MemoryServiceStub(channel)
        self._history = GrpcHistory(channel)
        self._memories = GrpcMemories(channel)
        self._fused = True

    async def reply_context(self, query: ReplyContextQuery) -> ReplyContext:
        await wait_connected(self._channel, self._connect_wait)
        if self._fused:
            try:
                reply = await self._stub.GetReplyContext(reply_context_request(query))
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise from_rpc_error(exc, service="memory") from None
                self._fused = False
            else:
                return convert.reply_context(reply)
        return await self._two_calls(query)

    async def _two_calls(self, query: ReplyContextQuery) -> ReplyContext:
        turns = await self._history.recent_turns(
            query.channel_id,
            query.personality_id,
            query.history_limit,
            whole_channel=query.whole_channel,
        )
        stamps = [turn.created_at for turn in turns if turn.created_at is not None]
        try:
            memories = await self._memories.relevant_memories(
                personality_id=query.personality_id,
                user_id=query.user_id,
                query=query.query,
                limit=query.memory_limit,
                threshold=query.threshold,
                exclude_after=min(stamps) if stamps else None,
            )
        except TzurotError:
            return ReplyContext(turns, [], memories_unavailable=True)
        return ReplyContext(turns, memories)


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
        request = query_request(
            personality_id=personality_id,
            user_id=user_id,
            query=query,
            limit=limit,
            threshold=threshold,
            exclude_after=exclude_after,
        )
        try:
            reply = await self._stub.QueryMemories(request)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="memory") from None
        return [convert.memory_item(memory) for memory in reply.memories]

    async def remember(
        self, personality_id: str, text: str, *, tags: tuple[str, ...], on_behalf_of: str
    ) -> str:
        """AddMemory in the scope of `on_behalf_of` (whose turn found it) with the
        personality, e.g. their web research findings: never the shared lore (user ''),
        which every user's prompt reads; one user's query, and the pages it found, reach
        only their own prompts (and go with ForgetUser). Refused INCOGNITO while that user
        is incognito; without a user (a scheduled turn's) nothing is stored."""
        if not on_behalf_of:
            raise InvalidArgument(
                "user_id",
                "a skill's memory belongs to the user whose turn found it; there is none",
                reason="NO_MEMORY_SCOPE",
            )
        memory = common.Memory(
            personality_id=personality_id,
            user_id=on_behalf_of,
            text=text,
            sector=common.MEMORY_SECTOR_SEMANTIC,
            tags=list(tags),
        )
        try:
            reply = await self._stub.AddMemory(mem.AddMemoryRequest(memory=memory))
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
