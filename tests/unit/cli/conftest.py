"""A fake gateway for driving the `tzurot` command as a user does (a real process, real mTLS).

It runs on its own event loop in a thread, so a test can run the CLI in a subprocess (or on
a pseudo-terminal) and wait for it synchronously.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import NotFound, Unavailable
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

SLOW = "take your time"
"""A message the fake answers with one chunk, then never finishes (until cancelled)."""
PROVIDER_DOWN = "is the provider there?"
"""A message the fake answers UNAVAILABLE for, as gateway does when a provider is down."""


@dataclass
class Recorded:
    generated: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    cancelled: int = 0
    keys: list[tuple[str, str]] = field(default_factory=list)


class FakeGateway(gw_grpc.GatewayServiceServicer):
    def __init__(self, recorded: Recorded) -> None:
        self.recorded = recorded

    async def Generate(
        self, request: gw.GenerateRequest, context: Any
    ) -> AsyncIterator[gw.GenerateResponse]:
        if request.personality == "Nobody":
            raise NotFound(f"no personality named {request.personality!r}")
        if request.content == PROVIDER_DOWN:
            raise Unavailable("openrouter is unreachable; try again later")
        self.recorded.generated.append(request.content)
        job = f"job-{len(self.recorded.generated)}"
        yield gw.GenerateResponse(
            accepted=gw.JobAccepted(
                job_id=job, personality=common.Personality(display_name=request.personality)
            )
        )
        if request.content == SLOW:
            # Counted wherever the cancel finds the handler: in the sleep (CancelledError) or,
            # on a loaded machine, still at the yield while its chunk is written (grpc then
            # closes the generator there: GeneratorExit, which the sleep alone never saw).
            try:
                yield gw.GenerateResponse(chunk=gw.TextChunk(text="let me think"))
                await asyncio.sleep(3600)
            except (asyncio.CancelledError, GeneratorExit):
                self.recorded.cancelled += 1
                raise
        yield gw.GenerateResponse(chunk=gw.TextChunk(text=f"echo: {request.content}"))
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content=request.content))

    async def ConfirmDelivery(
        self, request: gw.ConfirmDeliveryRequest, context: Any
    ) -> gw.ConfirmDeliveryResponse:
        self.recorded.confirmed.append(request.job_id)
        return gw.ConfirmDeliveryResponse()

    async def SetWalletKey(
        self, request: gw.SetWalletKeyRequest, context: Any
    ) -> gw.SetWalletKeyResponse:
        self.recorded.keys.append((request.provider, request.api_key))
        reply = gw.SetWalletKeyResponse(
            key=gw.WalletKey(provider=request.provider, hint=request.api_key[-4:])
        )
        if request.provider == "elevenlabs":  # as for a key restricted to text to speech
            reply.restriction.missing_permissions.append("voices_read")
        reply.unchecked = request.provider == "brave"  # no free check: stored untried
        return reply

    async def TestWalletKey(
        self, request: gw.TestWalletKeyRequest, context: Any
    ) -> gw.TestWalletKeyResponse:
        return gw.TestWalletKeyResponse(
            valid=False,
            detail=f"{request.provider} rejected the key; replace it with /wallet set "
            f"{request.provider}",
        )


@dataclass
class Gateway:
    """The fake's address, what it saw, and the environment that points the CLI at it."""

    addr: str
    pki: Path
    recorded: Recorded

    @property
    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")},
            "TZUROT_GATEWAY_ADDR": self.addr,
            "TZUROT_CLI_TLS_DIR": str(self.pki / "cli"),
        }


@pytest.fixture(scope="module")
def fake_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    pki = tmp_path_factory.mktemp("pki")
    generate_dev_pki(pki, ["gateway", "cli"])
    recorded = Recorded()
    loop = asyncio.new_event_loop()
    running: list[RunningServer] = []

    async def start() -> None:
        server = await create_server(
            service="gateway",
            # Port 0: the port it binds (one found free before might be taken meanwhile).
            settings=ServiceSettings(tls_dir=pki / "gateway", listen="127.0.0.1:0"),
            registrations=[
                ServiceRegistration(
                    "tzurot.v1.GatewayService",
                    lambda s: gw_grpc.add_GatewayServiceServicer_to_server(
                        FakeGateway(recorded),  # type: ignore[abstract]  # a few RPCs of many
                        s,
                    ),
                )
            ],
            default_allowed=frozenset({"cli"}),
        )
        await server.start()
        running.append(server)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield Gateway(f"127.0.0.1:{running[0].port}", pki, recorded)
    finally:
        asyncio.run_coroutine_threadsafe(running[0].stop(None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
