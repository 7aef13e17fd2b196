"""Storing a delivered exchange waits (bounded) for a channel to memory that is reconnecting.

The failure this reproduces: memory restarts, inference's channel is back and builds the next
prompt, but gateway's channel is still in its reconnect backoff, so StoreExchange failed at
once as UNAVAILABLE and the exchange reached history only at a later sweep: the user's next
message did not see the turn before it."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from tzurot.gateway.clients import GrpcMemory
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc


class Memory(mem_grpc.MemoryServiceServicer):
    def __init__(self) -> None:
        self.stored: list[str] = []

    async def StoreExchange(
        self, request: mem.StoreExchangeRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> mem.StoreExchangeResponse:
        self.stored.append(request.job_id)
        return mem.StoreExchangeResponse()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def store(memory: GrpcMemory) -> None:
    await memory.store_exchange(
        job_id="job-1", conversation_id="c", personality_id="p", user_id="u", turns=[]
    )


async def test_an_exchange_waits_for_memory_coming_back() -> None:
    port = free_port()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    servicer = Memory()  # type: ignore[abstract]  # serves StoreExchange only
    server = grpc.aio.server()
    mem_grpc.add_MemoryServiceServicer_to_server(servicer, server)
    try:
        # Memory is away: the channel fails to connect and enters its reconnect backoff.
        with pytest.raises(TzurotError) as away:
            await store(GrpcMemory(channel, connect_wait=0.0))
        assert away.value.code is grpc.StatusCode.UNAVAILABLE
        assert channel.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()  # memory is back, while the channel still backs off
        await store(GrpcMemory(channel, connect_wait=10.0))
        assert servicer.stored == ["job-1"]
    finally:
        await channel.close()
        await server.stop(None)


async def test_memory_that_stays_away_fails_after_the_bounded_wait() -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")
    try:
        async with asyncio.timeout(5):
            with pytest.raises(TzurotError) as away:
                await store(GrpcMemory(channel, connect_wait=0.5))
        assert away.value.code is grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
