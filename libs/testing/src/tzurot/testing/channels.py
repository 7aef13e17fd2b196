"""Channels to a service on loopback over mTLS, as a given identity, closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls

OpenChannel = Callable[[int, str], grpc.aio.Channel]
"""(the service's port, the caller's identity) -> a channel to it."""


@asynccontextmanager
async def channels_to(
    server_identity: str, pki: Path, *, default_timeout: float = 30.0
) -> AsyncIterator[OpenChannel]:
    """Opens channels to `server_identity` with the certificates of `pki/<identity>`; every
    channel opened is closed on exit."""
    opened: list[grpc.aio.Channel] = []

    def open_channel(port: int, identity: str) -> grpc.aio.Channel:
        channel = secure_channel(
            f"127.0.0.1:{port}",
            load_tls(pki / identity),
            server_identity=server_identity,
            default_timeout=default_timeout,
        )
        opened.append(channel)
        return channel

    try:
        yield open_channel
    finally:
        for channel in opened:
            await channel.close()
