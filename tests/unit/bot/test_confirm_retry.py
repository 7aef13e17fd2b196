"""ConfirmDelivery that fails transiently (the gateway restarting) is retried, by the bot and
by the CLI: an answer the user saw is never missing from history (issue #14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from tzurot.bot.gateway_client import GatewayClient as BotGateway
from tzurot.cli.gateway_client import CliUser
from tzurot.cli.gateway_client import GatewayClient as CliGateway
from tzurot.cli.settings import CliSettings
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import gateway_pb2 as gw


def _unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="down"
    )


class FlakyConfirm:
    """ConfirmDelivery that is UNAVAILABLE `failures` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[gw.ConfirmDeliveryRequest] = []

    def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, **_: Any) -> Any:
        self.requests.append(request)

        async def reply() -> gw.ConfirmDeliveryResponse:
            if len(self.requests) <= self.failures:
                raise _unavailable()
            return gw.ConfirmDeliveryResponse()

        return reply()


async def test_the_bot_retries_a_confirm_delivery_that_met_a_restarting_gateway() -> None:
    stub = FlakyConfirm(failures=2)
    bot = BotGateway(stub, generate_timeout=10.0)  # type: ignore[arg-type]
    await bot.confirm_delivery("job-1", [111, 222])
    assert len(stub.requests) == 3
    assert list(stub.requests[-1].message_ids) == ["111", "222"]


class Streamed:
    """A finished Generate stream: accepted, then finished."""

    def __init__(self) -> None:
        self.events = [
            gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-9")),
            gw.GenerateResponse(finished=gw.GenerationFinished(content="hi")),
        ]

    def __aiter__(self) -> Streamed:
        return self

    async def __anext__(self) -> gw.GenerateResponse:
        if not self.events:
            raise StopAsyncIteration
        return self.events.pop(0)


async def test_the_cli_retries_a_confirm_delivery_that_met_a_restarting_gateway(
    tmp_path: Path,
) -> None:
    generate_dev_pki(tmp_path, ["gateway", "cli"])
    cli = CliGateway(CliSettings(cli_tls_dir=tmp_path / "cli"))
    stub = FlakyConfirm(failures=2)
    stub.Generate = lambda *a, **k: Streamed()  # type: ignore[attr-defined]
    cli.stub = stub  # type: ignore[assignment]
    try:
        events = [e async for e in cli.chat_turn(CliUser("alice"), "lilith", "hello")]
    finally:
        await cli.__aexit__(None, None, None)
    assert events[-1].finished.content == "hi"
    assert len(stub.requests) == 3
    assert stub.requests[-1].job_id == "job-9"
