"""A key checked on a dead network fails fast: one bounded retry, not attempts x retries.

It once took 9 requests over 7 s: gateway's gRPC retry (3 attempts) of inference's ValidateKey,
each retrying the provider twice. Now inference tries the provider twice at most and gateway
does not retry ValidateKey at all.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.e2e import actor
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.mesh import InProcessMesh, in_process_mesh
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


class RefusingProvider:
    """Accepts each connection and resets it at once (RST): a provider that cannot be reached.
    Counts the attempts, which a closed port could not."""

    def __init__(self) -> None:
        self.attempts = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RefusingProvider:
        self._server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/v1"

    async def _refuse(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        raw = writer.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


@pytest.fixture
async def dead_network(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[tuple[InProcessMesh, RefusingProvider]]:
    async with (
        RefusingProvider() as refusing,
        FakeProvider() as unused,
        in_process_mesh(
            fresh_database(),
            tmp_path,
            unused,
            providers={"openrouter": refusing.base_url},
            inference={"provider_max_retries": 2},  # the production default
        ) as mesh,
    ):
        yield mesh, refusing


async def test_a_key_check_on_a_dead_network_tries_twice_and_says_why(
    dead_network: tuple[InProcessMesh, RefusingProvider],
) -> None:
    mesh, refusing = dead_network
    bot = await mesh.gateway_stub("bot")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bot.SetWalletKey(
            gw.SetWalletKeyRequest(
                actor=actor("alice"), provider="openrouter", api_key="sk-or-v1-" + "a" * 40
            )
        )
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "openrouter" in from_rpc_error(caught.value).message
    assert refusing.attempts == 2  # the first try and one retry, no more
    listed = await bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor("alice")))
    assert list(listed.keys) == []  # nothing stored
