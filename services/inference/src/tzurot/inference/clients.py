"""gRPC adapters for the ports inference calls: memory (history) and keyvault (Decrypt)."""

from __future__ import annotations

import grpc
from pydantic import SecretStr

from tzurot.inference import convert
from tzurot.inference.domain import HistoryTurn
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc


class GrpcHistory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = mem_grpc.MemoryServiceStub(channel)

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int
    ) -> list[HistoryTurn]:
        try:
            reply = await self._stub.GetHistory(
                mem.GetHistoryRequest(
                    channel_id=channel_id, personality_id=personality_id, limit=limit
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        turns = (convert.history_turn(turn) for turn in reply.turns)
        return [turn for turn in turns if turn is not None]


class GrpcKeyVault:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = kv_grpc.KeyVaultServiceStub(channel)

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        try:
            reply = await self._stub.Decrypt(kv.DecryptRequest(user_id=user_id, provider=provider))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_rpc_error(exc) from None
        return SecretStr(reply.api_key)
