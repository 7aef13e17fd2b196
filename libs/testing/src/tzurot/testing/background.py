"""The echo mesh on an event loop of its own thread, for synchronous tests (hypothesis).

Hypothesis drives plain functions; the mesh is asyncio. Here the mesh runs in a daemon
thread's loop and tests call it through synchronous gRPC channels with real mTLS.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tzurot.runtime.tls import channel_credentials, load_tls
from tzurot.testing.e2e import Harness, echo_mesh


@dataclass
class BackgroundMesh:
    harness: Harness
    loop: asyncio.AbstractEventLoop

    def port(self, service: str) -> int:
        return int(getattr(self.harness.mesh.ports, service))

    def channel(self, service: str, identity: str) -> grpc.Channel:
        """A synchronous mTLS channel to `service`, presenting `identity`'s certificate."""
        tls = load_tls(self.harness.mesh.pki / identity)
        return grpc.secure_channel(
            f"127.0.0.1:{self.port(service)}",
            channel_credentials(tls),
            options=[("grpc.ssl_target_name_override", service)],
        )

    def run(self, coroutine: Any, timeout: float = 60.0) -> Any:
        """Runs a coroutine on the mesh's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextmanager
def background_echo_mesh(
    database_url: str, workdir: Path, *, gateway: Mapping[str, Any] | None = None
) -> Iterator[BackgroundMesh]:
    loop = asyncio.new_event_loop()
    stop = threading.Event()
    started = threading.Event()
    failure: list[BaseException] = []
    holder: list[Harness] = []

    async def serve() -> None:
        try:
            async with echo_mesh(database_url, workdir, gateway=gateway) as harness:
                holder.append(harness)
                started.set()
                await asyncio.to_thread(stop.wait)
        except BaseException as exc:
            failure.append(exc)
            started.set()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.close()

    thread = threading.Thread(target=main, name="background-mesh", daemon=True)
    thread.start()
    started.wait(300)
    if failure:
        raise failure[0]
    try:
        yield BackgroundMesh(holder[0], loop)
    finally:
        stop.set()
        thread.join(60)
