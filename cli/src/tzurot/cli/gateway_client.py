"""A small typed client of GatewayService for the CLI (chat, wallet, personalities)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from types import TracebackType

import grpc

from tzurot.cli.settings import CliSettings
from tzurot.runtime.client import secure_channel
from tzurot.runtime.retry import retry_idempotent
from tzurot.runtime.tls import load_tls
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc


@dataclass(frozen=True)
class CliUser:
    """The human at the terminal; the CLI talks in a channel of its own per user."""

    name: str

    @property
    def actor(self) -> common.Actor:
        return common.Actor(user_id=f"cli:{self.name}", display_name=self.name)

    @property
    def location(self) -> common.Location:
        return common.Location(channel_id=f"cli:{self.name}")


class GatewayClient:
    def __init__(self, settings: CliSettings) -> None:
        self.settings = settings
        self._channel = secure_channel(
            settings.gateway_addr,
            load_tls(settings.cli_tls_dir),
            server_identity="gateway",
            default_timeout=settings.rpc_timeout_seconds,
        )
        self.stub = gw_grpc.GatewayServiceStub(self._channel)

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    def generate(
        self, user: CliUser, personality: str, content: str, *, show_reasoning: bool = False
    ) -> grpc.aio.UnaryStreamCall[gw.GenerateRequest, gw.GenerateResponse]:
        message_id = f"cli-{uuid.uuid4()}"
        return self.stub.Generate(
            gw.GenerateRequest(
                actor=user.actor,
                location=user.location,
                personality=personality,
                content=content,
                idempotency_key=message_id,
                message_ids=[message_id],
                show_reasoning=show_reasoning,  # shown only: never kept by asking
            ),
            timeout=self.settings.generate_timeout_seconds,
        )

    async def chat_turn(
        self, user: CliUser, personality: str, content: str, *, show_reasoning: bool = False
    ) -> AsyncGenerator[gw.GenerateResponse, None]:
        """One turn: stream the answer, then confirm delivery so the turn enters history.

        The confirmation is sent only when the consumer asks for the event after `finished`,
        that is once it has shown all the answer carries (its files saved): a consumer that
        stops there (raises, or closes this generator) leaves the turn unconfirmed."""
        call = self.generate(user, personality, content, show_reasoning=show_reasoning)
        job_id = ""
        async for event in call:
            if event.HasField("accepted"):
                job_id = event.accepted.job_id
            yield event
        if job_id:  # idempotent: retried across a gateway restart, so the turn is kept
            request = gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"cli-answer-{job_id}"])
            await retry_idempotent(
                lambda: self.stub.ConfirmDelivery(request), what="ConfirmDelivery"
            )
