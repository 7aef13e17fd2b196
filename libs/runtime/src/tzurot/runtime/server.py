"""The gRPC server bootstrap every service uses: mTLS, health, reflection, interceptors, metrics.

`create_server` builds (but does not start) the server so tests can bind port 0 and read
the real port; `serve_until_signal` waits for SIGTERM/SIGINT and drains gracefully: health
turns NOT_SERVING first, then in-flight calls get `grace` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from tzurot.runtime.authz import AccessRules, AuthorizationPolicy
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.grpc_options import SERVER_OPTIONS
from tzurot.runtime.interceptors import PipelinedServer, ServerCallPipeline
from tzurot.runtime.metrics import MetricsServer, start_metrics_server
from tzurot.runtime.tls import load_tls, server_credentials

__all__ = [
    "AuthorizationPolicy",
    "RunningServer",
    "ServiceRegistration",
    "create_server",
    "serve_until_signal",
    "wait_for_termination_signal",
]

log = structlog.get_logger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ServiceRegistration:
    """One servicer: its full proto service name and the generated `add_*_to_server`."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


@dataclass
class RunningServer:
    """A built server: the mTLS one and, when configured, a plaintext health-only one."""

    server: grpc.aio.Server
    port: int
    health_servicer: health_aio.HealthServicer
    service_names: tuple[str, ...]
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None
    metrics_server: MetricsServer | None = None

    async def start(self) -> None:
        """Starts serving and reports SERVING for "" and every registered service."""
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        for name in ("", *self.service_names):
            await self.health_servicer.set(name, _SERVING)

    async def stop(self, grace: float | None) -> None:
        """Health turns NOT_SERVING for good, then in-flight calls get `grace` seconds."""
        await self.health_servicer.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(grace)
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)


async def create_server(
    *,
    service: str,
    settings: ServiceSettings,
    registrations: Sequence[ServiceRegistration],
    authorization: AuthorizationPolicy | None = None,
    default_allowed: frozenset[str] | None = None,
) -> RunningServer:
    """Builds the mTLS server for `service` with health, reflection and our interceptors."""
    names = tuple(reg.name for reg in registrations)
    rules = AccessRules(authorization, default_allowed)
    unknown = rules.unknown_services(frozenset(names))
    if unknown:
        raise StartupError(f"authorization names unregistered methods: {', '.join(unknown)}")
    credentials = server_credentials(load_tls(settings.tls_dir))
    pipeline = ServerCallPipeline(rules=rules, max_request_seconds=settings.max_request_seconds)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    registering = PipelinedServer(server, pipeline)
    for registration in registrations:
        registration.add_to_server(registering)
    health = health_aio.HealthServicer()
    for name in ("", *names):
        await health.set(name, _NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, registering)
    reflection.enable_server_reflection(
        (*names, HEALTH_SERVICE, reflection.SERVICE_NAME), registering
    )
    port = _bind(settings.listen, lambda: server.add_secure_port(settings.listen, credentials))
    running = RunningServer(server=server, port=port, health_servicer=health, service_names=names)
    if settings.health_listen:
        running.health_server, running.health_port = _plaintext_health(
            settings.health_listen, health
        )
    if settings.metrics_listen:
        running.metrics_server = start_metrics_server(settings.metrics_listen)
    log.info(
        "server.created",
        service=service,
        port=port,
        health_port=running.health_port,
        metrics_port=running.metrics_server.port if running.metrics_server else None,
    )
    return running


def _plaintext_health(
    address: str, health: health_aio.HealthServicer
) -> tuple[grpc.aio.Server, int]:
    """A server carrying only grpc.health.v1, for probes that cannot do mTLS."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return server, _bind(address, lambda: server.add_insecure_port(address))


def _bind(address: str, add_port: Callable[[], int]) -> int:
    """Runs `add_port`, turning gRPC's failure to bind into a StartupError."""
    try:
        port = add_port()
    except RuntimeError:
        port = 0
    if port == 0:
        raise StartupError(f"cannot listen on {address} (in use or not a valid host:port)")
    return port


TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def signal_received(signals: Sequence[signal.Signals]) -> Iterator[asyncio.Future[signal.Signals]]:
    """A future resolved by the first of `signals`; handlers are installed on entry."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(signum: signal.Signals) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield received
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def wait_for_termination_signal(
    signals: Sequence[signal.Signals] = TERMINATION_SIGNALS,
) -> signal.Signals:
    """Returns the first of `signals` the process receives (handlers removed afterwards)."""
    with signal_received(signals) as received:
        return await received


async def serve_until_signal(running: RunningServer, grace: float) -> None:
    """Serves until SIGTERM or SIGINT, then drains gracefully (health first, then calls).

    The signal handlers are in place as soon as the coroutine first runs. (It does not
    race `server.wait_for_termination()`: cancelling that breaks grpc's later `stop`.)
    """
    signum = await wait_for_termination_signal()
    log.info("server.draining", signal=signum.name, grace_seconds=grace)
    await running.stop(grace)
    log.info("server.stopped")
