"""Generated `add_*_to_server` register each method twice (generic handler and grpc's
registered methods); the server keeps only what changes which handler runs (issue 16)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from tests.unit.runtime.conftest import ChannelFactory, StartServer
from tzurot.runtime.identity import bind_call, current_caller, current_request_id
from tzurot.runtime.server import ServiceRegistration

if TYPE_CHECKING:  # generic only in the stubs
    UnaryUnary = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
    Handler = grpc.RpcMethodHandler[bytes, bytes]


def unary_unary(channel: grpc.aio.Channel, method: str) -> UnaryUnary:
    return channel.unary_unary(method)


def _registered_call_requests() -> list[asyncio.Task[Any]]:
    """grpc.aio's pending requests for registered methods (one per method it registered)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__name__", "") == "_request_registered_call"
    ]


async def test_generated_services_are_served_without_registered_method_requests(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    """Health and reflection come through their generated `add_*_to_server` (generic and
    registered): no registered-method request is kept pending, and health still answers."""
    running = await start_server()
    assert _registered_call_requests() == []
    channel = channel_to(running)
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_registered_handler_still_wins_over_a_generic_one(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    """A registered handler for a method a generic handler serves differently is registered
    (grpc prefers it), as before."""

    async def generic(request: bytes, context: Any) -> bytes:
        return b"generic"

    async def registered(request: bytes, context: Any) -> bytes:
        return f"registered|{current_caller()}|{current_request_id()}".encode()

    def add(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "test.v1.Both", {"Who": grpc.unary_unary_rpc_method_handler(generic)}
                )
            ]
        )
        server.add_registered_method_handlers(
            "test.v1.Both", {"Who": grpc.unary_unary_rpc_method_handler(registered)}
        )

    running = await start_server(registrations=[ServiceRegistration("test.v1.Both", add)])
    assert len(_registered_call_requests()) == 1
    with bind_call(None, "req-both"):
        reply = await unary_unary(channel_to(running), "/test.v1.Both/Who")(b"")
    assert reply == b"registered|bot|req-both"


async def test_handlers_a_generic_handler_serves_alike_are_not_registered_again(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    """The generated shape: the same handlers added as a generic handler, then registered.
    Every method runs through the pipeline from the generic handler alone."""

    async def who(request: bytes, context: Any) -> bytes:
        return f"{current_caller()}|{current_request_id()}".encode()

    handlers: dict[str, Handler] = {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Again": grpc.unary_unary_rpc_method_handler(who),
    }

    def add(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("test.v1.Twice", handlers)]
        )
        server.add_registered_method_handlers("test.v1.Twice", handlers)

    running = await start_server(
        registrations=[ServiceRegistration("test.v1.Twice", add)],
        authorization={
            "/test.v1.Twice/Who": frozenset({"bot"}),
            "/test.v1.Twice/Again": frozenset({"bot"}),
        },
    )
    assert _registered_call_requests() == []
    channel = channel_to(running)
    with bind_call(None, "req-twice"):
        assert await unary_unary(channel, "/test.v1.Twice/Who")(b"") == b"bot|req-twice"
        assert await unary_unary(channel, "/test.v1.Twice/Again")(b"") == b"bot|req-twice"
    refused = unary_unary(channel_to(running, identity="cli"), "/test.v1.Twice/Who")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await refused(b"")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
