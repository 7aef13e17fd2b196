"""Health and metrics endpoints for a process that serves no gRPC API of its own (the bot).

Kubernetes probes it like the others: plaintext `grpc.health.v1` on `TZUROT_HEALTH_LISTEN`
and Prometheus metrics on `TZUROT_METRICS_LISTEN`; either is skipped when unset.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.grpc_options import SERVER_OPTIONS
from tzurot.runtime.metrics import MetricsServer, start_metrics_server

log = structlog.get_logger(__name__)


@dataclass
class ProbeServer:
    """The probe endpoints; `set_serving` flips the health status ("" service)."""

    health: health_aio.HealthServicer
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None
    metrics_server: MetricsServer | None = None

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else None
        await self.health.set("", status or health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        if self.health_server is not None:
            await self.health_server.stop(1.0)
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)


async def start_probe_server(service: str, settings: ServiceSettings) -> ProbeServer:
    """Starts what `settings` asks for; health answers NOT_SERVING until `set_serving(True)`."""
    probes = ProbeServer(health=health_aio.HealthServicer())
    await probes.set_serving(False)
    if settings.health_listen:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        health_pb2_grpc.add_HealthServicer_to_server(probes.health, server)
        try:
            port = server.add_insecure_port(settings.health_listen)
        except RuntimeError:
            port = 0
        if port == 0:
            raise StartupError(f"cannot listen on {settings.health_listen} (in use or invalid)")
        await server.start()
        probes.health_server, probes.health_port = server, port
    if settings.metrics_listen:
        probes.metrics_server = start_metrics_server(settings.metrics_listen)
    log.info(
        "probes.started",
        service=service,
        health_port=probes.health_port,
        metrics_port=probes.metrics_server.port if probes.metrics_server else None,
    )
    return probes
