"""GatewayService servicer: converts requests, calls the Gateway use-cases, converts replies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
from pydantic import SecretStr

from tzurot.gateway import convert
from tzurot.gateway.domain import Actor
from tzurot.gateway.paging import PageRequest
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

Context = grpc.aio.ServicerContext[object, object]


class GatewayServicer(gw_grpc.GatewayServiceServicer):
    def __init__(self, gateway: Gateway, wallet: Wallet) -> None:
        self._gateway = gateway
        self._wallet = wallet
        self._closing: set[asyncio.Task[None]] = set()

    async def Generate(
        self, request: gw.GenerateRequest, context: Context
    ) -> AsyncIterator[gw.GenerateResponse]:
        command = convert.generate_command(request)
        events = self._gateway.generate(command)
        # The call's end closes the use-case now, which records the job failed-retryable:
        # also when grpc was waiting to write a response and never resumes this generator
        # (its `aclosing` would then run only when the garbage collector finalizes it).
        context.add_done_callback(lambda _: self._close_soon(events))  # type: ignore[arg-type]  # grpc-stubs declare the callback a private class, not a Protocol; grpc calls any callable
        async with contextlib.aclosing(events):
            async for event in events:
                yield convert.generate_event(event)

    def _close_soon(self, events: AsyncGenerator[Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(_closed_quietly(events))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def ConfirmDelivery(
        self, request: gw.ConfirmDeliveryRequest, context: Context
    ) -> gw.ConfirmDeliveryResponse:
        job = await self._gateway.confirm_delivery(request.job_id, list(request.message_ids))
        return gw.ConfirmDeliveryResponse(job=convert.job(job))

    async def NoteAnswerPreview(
        self, request: gw.NoteAnswerPreviewRequest, context: Context
    ) -> gw.NoteAnswerPreviewResponse:
        await self._gateway.note_preview(
            request.job_id, list(request.message_ids), request.reply_header
        )
        return gw.NoteAnswerPreviewResponse()

    async def GetJobStatus(
        self, request: gw.GetJobStatusRequest, context: Context
    ) -> gw.GetJobStatusResponse:
        job = await self._gateway.job_status(
            job_id=request.job_id,
            idempotency_key=request.idempotency_key,
            delivered_message_id=request.delivered_message_id,
        )
        inspected = None
        if request.HasField("actor") and request.actor.user_id:
            inspected = await self._gateway.job_context(job, convert.actor(request.actor))
        return gw.GetJobStatusResponse(job=convert.job(job, inspected))

    async def GetPersonality(
        self, request: gw.GetPersonalityRequest, context: Context
    ) -> gw.GetPersonalityResponse:
        personality = await self._gateway.get_personality(
            request.personality, _actor_or_none(request)
        )
        return gw.GetPersonalityResponse(personality=convert.personality(personality))

    async def ListPersonalities(
        self, request: gw.ListPersonalitiesRequest, context: Context
    ) -> gw.ListPersonalitiesResponse:
        return await self._list_personalities(request, owned_by=None)

    async def _list_personalities(
        self, request: gw.ListPersonalitiesRequest, *, owned_by: str | None
    ) -> gw.ListPersonalitiesResponse:
        page = await self._gateway.list_personalities(
            _actor_or_none(request),
            PageRequest(request.page.page_size, request.page.page_token),
            owned_by=owned_by,
        )
        return gw.ListPersonalitiesResponse(
            personalities=[convert.personality(p) for p in page.items],
            page=common.PageResponse(next_page_token=page.next_token),
        )

    async def SetWalletKey(
        self, request: gw.SetWalletKeyRequest, context: Context
    ) -> gw.SetWalletKeyResponse:
        stored = await self._wallet.set(
            convert.actor(request.actor),
            request.provider,
            SecretStr(request.api_key),
            skip_validation=request.skip_validation,
        )
        return gw.SetWalletKeyResponse(
            key=convert.wallet_key(stored.key),
            restriction=convert.key_restriction(stored.restriction),
            unchecked=stored.unchecked,
        )

    async def ListWalletKeys(
        self, request: gw.ListWalletKeysRequest, context: Context
    ) -> gw.ListWalletKeysResponse:
        keys = await self._wallet.list(convert.actor(request.actor))
        return gw.ListWalletKeysResponse(keys=[convert.listed_key(k) for k in keys])

    async def RemoveWalletKey(
        self, request: gw.RemoveWalletKeyRequest, context: Context
    ) -> gw.RemoveWalletKeyResponse:
        await self._wallet.remove(convert.actor(request.actor), request.provider)
        return gw.RemoveWalletKeyResponse()

    async def TestWalletKey(
        self, request: gw.TestWalletKeyRequest, context: Context
    ) -> gw.TestWalletKeyResponse:
        result = await self._wallet.test(convert.actor(request.actor), request.provider)
        return gw.TestWalletKeyResponse(
            valid=result.valid,
            detail=result.detail,
            restriction=convert.key_restriction(result.restriction),
        )


def _actor_or_none(
    request: gw.GetPersonalityRequest | gw.ListPersonalitiesRequest,
) -> Actor | None:
    return (
        convert.actor(request.actor)
        if request.HasField("actor") and request.actor.user_id
        else None
    )


def _not_built(name: str) -> Callable[..., Awaitable[NoReturn]]:
    async def not_built(self: GatewayServicer, request: Any, context: Context) -> NoReturn:
        raise TzurotError(
            f"{name} is not available yet",
            code=grpc.StatusCode.UNIMPLEMENTED,
            reason="NOT_IMPLEMENTED",
        )

    not_built.__name__ = name
    return not_built


# The generated base answers an unbuilt RPC by raising NotImplementedError, which the server
# interceptor reports as INTERNAL (an unexpected error); answer UNIMPLEMENTED, typed, instead.
for _method in gw.DESCRIPTOR.services_by_name["GatewayService"].methods:
    if _method.name not in GatewayServicer.__dict__:
        setattr(GatewayServicer, _method.name, _not_built(_method.name))


async def _closed_quietly(events: AsyncGenerator[Any, None]) -> None:
    """Closes `events` (a no-op if it ended; left alone if it is running: then the
    call's cancellation reaches it where it waits)."""
    with contextlib.suppress(RuntimeError):
        await events.aclose()
