"""Gateway's keyvault client: PutKey runs inside the key-write fence, which holds a pooled
connection meanwhile, so a keyvault away or stalled answers within seconds, not the
channel's 30 s deadline."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from tzurot.gateway.clients import PUT_KEY_SECONDS, GrpcKeyVault
from tzurot.runtime.client import DefaultsChannel, _Defaults
from tzurot.runtime.errors import TzurotError


class RecordingPutKey:
    """The stub's PutKey: records how it was called, then fails as an unreachable peer."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, request: object, **options: Any) -> Any:
        self.calls.append(options)
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "away"
        )


class ReadyChannel:
    """A connected channel; its methods' stand-ins are set by the test."""

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY

    def unary_unary(self, *args: Any, **kwargs: Any) -> None:
        return None

    unary_stream = unary_unary


async def test_put_key_has_its_own_short_deadline_and_does_not_wait_for_ready() -> None:
    vault = GrpcKeyVault(ReadyChannel())  # type: ignore[arg-type]  # only its state is read
    put = RecordingPutKey()
    vault._stub.PutKey = put  # type: ignore[assignment]  # the recording stand-in
    with pytest.raises(TzurotError) as refused:
        await vault.put_key("user-1", "openrouter", SecretStr("sk-test"))
    assert refused.value.code is grpc.StatusCode.UNAVAILABLE
    assert put.calls == [{"timeout": PUT_KEY_SECONDS, "wait_for_ready": False}]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_keyvault_that_is_not_there_is_refused_in_seconds() -> None:
    """A channel as gateway makes it (30 s, wait for ready) to a port nobody listens on."""
    raw = grpc.aio.insecure_channel(f"127.0.0.1:{_closed_port()}")
    channel = DefaultsChannel(raw, _Defaults(30.0, wait_for_ready=True))
    try:
        async with asyncio.timeout(PUT_KEY_SECONDS):  # far under the channel's 30 s
            with pytest.raises(TzurotError) as refused:
                await GrpcKeyVault(channel).put_key("user-1", "openrouter", SecretStr("sk-test"))
    finally:
        await raw.close()
    assert refused.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
