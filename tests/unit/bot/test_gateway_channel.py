"""A message the bot receives while its channel to the gateway is still connecting (start-up,
or the gateway restarting) waits for the connection instead of failing UNAVAILABLE.

Real mTLS gRPC on loopback: the bot's own channel (`gateway_channel`) first fails to connect
(nothing listens yet) and sits in reconnect backoff; then the gateway comes up on that port.
Generate and a read sent during the backoff are both answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient, gateway_channel
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.server import ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import free_port
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc


class Gateway(gw_grpc.GatewayServiceServicer):
    async def Generate(
        self, request: gw.GenerateRequest, context: object
    ) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content=f"hi {request.content}"))

    async def GetChannelActivation(
        self, request: gw.GetChannelActivationRequest, context: object
    ) -> gw.GetChannelActivationResponse:
        return gw.GetChannelActivationResponse()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    generate_dev_pki(out, ["gateway", "bot"])
    return out


async def _backing_off(channel: grpc.aio.Channel) -> None:
    """Until the channel has failed to connect (gRPC fails calls fast in this state)."""
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.TRANSIENT_FAILURE:
        await asyncio.wait_for(channel.wait_for_state_change(state), 10)
        state = channel.get_state(try_to_connect=True)


async def test_calls_made_while_the_channel_backs_off_wait_for_the_gateway(pki: Path) -> None:
    port = free_port()
    settings = BotSettings(gateway_addr=f"127.0.0.1:{port}", tls_dir=pki / "bot")
    channel = gateway_channel(settings)
    client = GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=20.0)
    server = None
    try:
        await _backing_off(channel)

        async def generate() -> list[gw.GenerateResponse]:
            request = gw.GenerateRequest(content="there", idempotency_key="m1:lilith")
            return [event async for event in client.generate(request)]

        answer = asyncio.create_task(generate())
        active = asyncio.create_task(client.activation(common.Location(channel_id="1")))
        await asyncio.sleep(0.3)
        # Without waiting for readiness both calls have failed UNAVAILABLE by now.
        assert not answer.done()
        assert not active.done()

        server = await create_server(
            service="gateway",
            settings=ServiceSettings(tls_dir=pki / "gateway", listen=f"127.0.0.1:{port}"),
            registrations=[
                ServiceRegistration(
                    "tzurot.v1.GatewayService",
                    lambda s: gw_grpc.add_GatewayServiceServicer_to_server(
                        Gateway(),  # type: ignore[abstract]  # two RPCs of many
                        s,
                    ),
                )
            ],
            default_allowed=frozenset({"bot"}),
        )
        await server.start()
        events = await asyncio.wait_for(answer, 15)
        assert [e.WhichOneof("event") for e in events] == ["accepted", "finished"]
        assert events[-1].finished.content == "hi there"
        assert await asyncio.wait_for(active, 15) is None
    finally:
        if server is not None:
            await server.stop(None)
        await channel.close()


async def test_a_call_still_fails_at_its_deadline_when_the_gateway_never_comes(
    pki: Path,
) -> None:
    settings = BotSettings(
        gateway_addr=f"127.0.0.1:{free_port()}",
        tls_dir=pki / "bot",
        default_deadline_seconds=0.5,
    )
    channel = gateway_channel(settings)
    client = GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=0.5)
    try:
        await _backing_off(channel)
        with pytest.raises(TzurotError) as raised:
            await client.activation(common.Location(channel_id="1"))
        assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await channel.close()


class FlakyGateway(gw_grpc.GatewayServiceServicer):
    """Refuses the first notes UNAVAILABLE (a gateway restarting), then keeps them."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.noted: list[tuple[str, list[str]]] = []

    async def NoteAnswerPreview(
        self, request: gw.NoteAnswerPreviewRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gw.NoteAnswerPreviewResponse:
        if self.refusals > 0:
            self.refusals -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        self.noted.append((request.job_id, list(request.message_ids)))
        return gw.NoteAnswerPreviewResponse()


async def test_a_preview_note_refused_while_the_gateway_restarts_is_sent_again(
    pki: Path,
) -> None:
    gateway = FlakyGateway(refusals=2)  # type: ignore[abstract]  # one RPC of many
    server = await create_server(
        service="gateway",
        settings=ServiceSettings(tls_dir=pki / "gateway", listen="127.0.0.1:0"),
        registrations=[
            ServiceRegistration(
                "tzurot.v1.GatewayService",
                lambda s: gw_grpc.add_GatewayServiceServicer_to_server(
                    gateway,
                    s,
                ),
            )
        ],
        default_allowed=frozenset({"bot"}),
    )
    await server.start()
    channel = gateway_channel(
        BotSettings(gateway_addr=f"127.0.0.1:{server.port}", tls_dir=pki / "bot")
    )
    try:
        client = GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=20.0)
        await asyncio.wait_for(client.note_preview("job-1", [11, 12]), 20)
        assert gateway.refusals == 0
        assert gateway.noted == [("job-1", ["11", "12"])]
    finally:
        await channel.close()
        await server.stop(None)
