"""Fixtures for runtime tests: a dev PKI on disk and real mTLS gRPC servers on loopback."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
import structlog

from tzurot.runtime.authz import AuthorizationPolicy
from tzurot.runtime.client import secure_channel
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import InvalidArgument, NotFound, ResourceExhausted
from tzurot.runtime.identity import current_caller, current_request_id
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki, load_tls

TEST_SERVICE = "test.v1.Probe"
LEAKY_TEXT = "database password hunter2-do-not-leak"
LEAKY_KEY = "sk-or-v1-" + "0123456789abcdef" * 4


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide logging; put the defaults back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev PKI with the identities the tests use."""
    out = tmp_path_factory.mktemp("pki")
    generate_dev_pki(out, ["gateway", "inference", "keyvault", "bot", "cli"])
    return out


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates for the same names, signed by a different CA."""
    out = tmp_path_factory.mktemp("foreign-pki")
    generate_dev_pki(out, ["gateway", "bot"])
    return out


async def _whoami(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    remaining = context.time_remaining()
    return f"{current_caller()}|{current_request_id()}|{remaining}".encode()


async def _fail(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    kind = request.decode()
    if kind == "not_found":
        raise NotFound(
            "no personality named 'x'", reason="PERSONALITY_NOT_FOUND", metadata={"name": "x"}
        )
    if kind == "invalid":
        raise InvalidArgument("content", "the message is empty")
    if kind == "exhausted":
        raise ResourceExhausted("slow down", retry_after_seconds=1.5, reason="RATE_LIMITED")
    if kind == "abort":
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, "plain abort")
    raise RuntimeError(f"{LEAKY_TEXT} key={LEAKY_KEY}")


async def _sleep(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.Event().wait()
    return b""


async def _count(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    for i in range(int(request.decode())):
        yield f"{i}|{current_caller()}".encode()
    if request == b"2":
        raise NotFound("ran out", reason="RAN_OUT")


async def _sum(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> bytes:
    total = sum([int(r.decode()) async for r in requests])
    return f"{total}|{current_caller()}".encode()


async def _echo_all(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        if request == b"boom":
            raise RuntimeError(LEAKY_TEXT)
        yield request + f"|{current_caller()}".encode()


def probe_registration() -> ServiceRegistration:
    """A bytes-in/bytes-out service covering all four cardinalities."""
    handler = grpc.method_handlers_generic_handler(
        TEST_SERVICE,
        {
            "Whoami": grpc.unary_unary_rpc_method_handler(_whoami),
            "Fail": grpc.unary_unary_rpc_method_handler(_fail),
            "Sleep": grpc.unary_unary_rpc_method_handler(_sleep),
            "Count": grpc.unary_stream_rpc_method_handler(_count),
            "Sum": grpc.stream_unary_rpc_method_handler(_sum),
            "EchoAll": grpc.stream_stream_rpc_method_handler(_echo_all),
        },
    )
    return ServiceRegistration(
        TEST_SERVICE, lambda server: server.add_generic_rpc_handlers([handler])
    )


class StartServer(Protocol):
    def __call__(
        self,
        *,
        identity: str = "gateway",
        registrations: list[ServiceRegistration] | None = None,
        authorization: AuthorizationPolicy | None = None,
        default_allowed: frozenset[str] | None = None,
        **settings: Any,
    ) -> Awaitable[RunningServer]: ...


@pytest.fixture
async def start_server(pki: Path) -> AsyncIterator[StartServer]:
    """Starts real mTLS servers on port 0; stops them after the test."""
    started: list[RunningServer] = []

    async def start(
        *,
        identity: str = "gateway",
        registrations: list[ServiceRegistration] | None = None,
        authorization: AuthorizationPolicy | None = None,
        default_allowed: frozenset[str] | None = None,
        **settings: Any,
    ) -> RunningServer:
        running = await create_server(
            service=identity,
            settings=ServiceSettings(tls_dir=pki / identity, **settings),
            registrations=registrations if registrations is not None else [probe_registration()],
            authorization=authorization,
            default_allowed=default_allowed,
        )
        await running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(None)


ChannelFactory = Callable[..., grpc.aio.Channel]


@pytest.fixture
async def channel_to(pki: Path) -> AsyncIterator[ChannelFactory]:
    """Opens client channels as some identity; closes them after the test."""
    opened: list[grpc.aio.Channel] = []

    def open_channel(
        running: RunningServer,
        *,
        identity: str = "bot",
        server_identity: str = "gateway",
        default_timeout: float = 10.0,
        tls_root: Path | None = None,
        **kwargs: Any,
    ) -> grpc.aio.Channel:
        channel = secure_channel(
            f"127.0.0.1:{running.port}",
            load_tls((tls_root or pki) / identity),
            server_identity=server_identity,
            default_timeout=default_timeout,
            **kwargs,
        )
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        await channel.close()
