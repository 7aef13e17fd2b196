"""`python -m tzurot.memory.consolidate`: one scheduled consolidation pass of memory.

The memory-consolidation CronJob runs this in the memory image with memory's own certificate;
it asks a running memory replica (`TZUROT_MEMORY_ADDR`) for `Consolidate` over mTLS, so the
pass runs in the service that owns the data, and prints what it did.
"""

from __future__ import annotations

import grpc
import structlog

from tzurot.runtime.client import secure_channel
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError, from_rpc_error
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.tls import load_tls
from tzurot.v1 import memory_pb2, memory_pb2_grpc

log = structlog.get_logger(__name__)


class ConsolidateSettings(ServiceSettings):
    """Where the memory service is and how long a pass may take; no database is opened."""

    memory_addr: str = "memory:50053"
    consolidate_deadline_seconds: float = 1800.0


async def consolidate_once(settings: ConsolidateSettings) -> memory_pb2.ConsolidateResponse:
    """Calls Consolidate on the memory service as identity `memory`."""
    channel = secure_channel(
        settings.memory_addr,
        load_tls(settings.tls_dir),
        server_identity="memory",
        default_timeout=settings.consolidate_deadline_seconds,
    )
    async with channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        reply: memory_pb2.ConsolidateResponse = await stub.Consolidate(
            memory_pb2.ConsolidateRequest()
        )
        return reply


async def _main() -> None:
    settings = ConsolidateSettings.load()
    configure_logging("memory-consolidate", level=settings.log_level, fmt=settings.log_format)
    try:
        reply = await consolidate_once(settings)
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc)
        raise StartupError(f"Consolidate failed: [{err.code.name.lower()}] {err.message}") from None
    log.info(
        "consolidate.done",
        decayed=reply.decayed,
        pruned=reply.pruned,
        merged=reply.merged,
        reflections=reply.reflections,
    )


def main() -> None:
    run_service("memory-consolidate", _main)


if __name__ == "__main__":
    main()
