"""Generate's servicer closes the use-case when the call ends, even unresumed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

from tzurot.gateway.admin import Admin
from tzurot.gateway.domain import GenerateCommand, GenerateEvent, ReplyChunk
from tzurot.gateway.group_server import GatewayGroupServicer, GroupFeatures
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class StreamingGateway:
    """Streams chunks until closed; notes when its stream was closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def generate(self, command: GenerateCommand) -> AsyncGenerator[GenerateEvent, None]:
        try:
            while True:
                yield ReplyChunk("more")
        finally:
            self.closed.set()


class EndingContext:
    """A call's context whose end the test decides."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], object]] = []

    def add_done_callback(self, callback: Callable[[Any], object]) -> None:
        self.callbacks.append(callback)

    def end(self) -> None:
        for callback in self.callbacks:
            callback(self)


async def test_a_call_ended_while_grpc_waits_to_write_closes_the_use_case() -> None:
    """grpc cancels its own write, not this generator: without the done callback the
    use-case (and the job's `running` row and heartbeat) lived until garbage collection."""
    gateway, context = StreamingGateway(), EndingContext()
    servicer = GatewayGroupServicer(
        cast(Gateway, gateway), cast(Wallet, None), cast(Admin, None), cast(GroupFeatures, None)
    )
    request = gw.GenerateRequest(
        actor=common.Actor(user_id="1", display_name="Alice"),
        location=common.Location(guild_id="g", channel_id="c"),
        personality="lilith",
        content="hi",
        idempotency_key="k",
    )
    responses = servicer.Generate(request, cast(Any, context))
    first = await anext(responses)  # grpc writes it, then is cancelled while writing the next
    assert first.chunk.text == "more"
    await anext(responses)
    context.end()
    await asyncio.wait_for(gateway.closed.wait(), 5)
