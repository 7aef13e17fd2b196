"""serve_until_signal(): SIGTERM drains the server gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

from grpc_health.v1 import health_pb2

from tzurot.runtime.server import RunningServer, serve_until_signal, wait_for_termination_signal

StartServer = Callable[..., Awaitable[RunningServer]]


async def test_sigterm_drains_and_reports_not_serving(start_server: StartServer) -> None:
    running = await start_server()
    serving = asyncio.ensure_future(serve_until_signal(running, grace=1.0))
    await asyncio.sleep(0)  # let it install its signal handlers
    os.kill(os.getpid(), signal.SIGTERM)
    await serving
    status = await running.health_servicer.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_signal_handlers_are_removed_afterwards() -> None:
    waiting = asyncio.ensure_future(wait_for_termination_signal((signal.SIGUSR1,)))
    await asyncio.sleep(0)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert await waiting is signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
