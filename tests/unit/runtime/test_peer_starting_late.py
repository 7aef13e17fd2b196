"""A service's channel to a peer that is not listening yet when it starts (services start
together): its warm-up connection is refused and gRPC backs off. The first call made once the
peer is up must be answered, not refused as "restarting" (keyvault's callers wait for ready,
memory's wait a bounded while; CI saw the first message after `tzurot up` fail this way)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import grpc
import pytest

from tzurot.runtime.client import connect_channels, secure_channel, wait_connected
from tzurot.runtime.tls import load_tls

from .conftest import StartServer
from .test_server import whoami


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _channel(pki: Path, port: int, *, wait_for_ready: bool = False) -> grpc.aio.Channel:
    return secure_channel(
        f"127.0.0.1:{port}",
        load_tls(pki / "bot"),
        server_identity="gateway",
        default_timeout=10.0,
        wait_for_ready=wait_for_ready,
    )


async def _refused(channel: grpc.aio.Channel) -> None:
    """Starts the channel's connection and waits until it has failed (reconnect backoff)."""
    connect_channels([channel])
    for _ in range(100):
        if channel.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the channel never failed to connect: {channel.get_state()}")


async def test_the_first_call_after_a_late_peer_starts_is_answered(
    start_server: StartServer, pki: Path
) -> None:
    port = _unused_port()
    channel = _channel(pki, port, wait_for_ready=True)
    try:
        await _refused(channel)  # without wait_for_ready a call now fails UNAVAILABLE
        await start_server(listen=f"127.0.0.1:{port}")
        caller, _, _ = await whoami(channel)
    finally:
        await channel.close()
    assert caller == "bot"


async def test_a_bounded_connect_wait_lets_a_fail_fast_call_reach_a_late_peer(
    start_server: StartServer, pki: Path
) -> None:
    """Inference's reply context (memory: a reply can go ahead without it) fails fast, after
    waiting a bounded while for the channel; the peer that came up meanwhile answers it."""
    port = _unused_port()
    channel = _channel(pki, port)
    try:
        await _refused(channel)
        await start_server(listen=f"127.0.0.1:{port}")
        await wait_connected(channel, 5.0)
        caller, _, _ = await whoami(channel)
    finally:
        await channel.close()
    assert caller == "bot"


async def test_a_bounded_connect_wait_gives_up_on_a_peer_that_stays_away(pki: Path) -> None:
    channel = _channel(pki, _unused_port())
    try:
        await _refused(channel)
        await wait_connected(channel, 0.3)  # returns: the call then fails as it would have
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await whoami(channel)
    finally:
        await channel.close()
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
