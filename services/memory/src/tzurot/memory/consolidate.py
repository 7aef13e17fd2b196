"""`python -m tzurot.memory.consolidate`: one scheduled consolidation pass of memory.

The memory-consolidation CronJob runs this in the memory image with memory's own certificate;
it asks a running memory replica (`TZUROT_MEMORY_ADDR`) for `Consolidate` over mTLS, so the
pass runs in the service that owns the data, and prints what it did. With
`TZUROT_HISTORY_RETENTION_DAYS` > 0 it then asks for `PruneHistory`: conversation turns
older than that many days are deleted (0, the default, keeps history forever).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import structlog
from pydantic import Field

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

    memory_addr: str = "memory:15053"
    consolidate_deadline_seconds: float = 1800.0
    history_retention_days: int = Field(default=0, ge=0)
    """`TZUROT_HISTORY_RETENTION_DAYS`: prune turns older than this; 0 keeps them all."""


@dataclass(frozen=True)
class PassReport:
    consolidated: memory_pb2.ConsolidateResponse
    pruned_turns: int = 0


async def consolidate_once(settings: ConsolidateSettings) -> PassReport:
    """Calls Consolidate (then PruneHistory, if retention is set) as identity `memory`."""
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
        if not settings.history_retention_days:
            return PassReport(reply)
        request = memory_pb2.PruneHistoryRequest()
        cutoff = datetime.now(UTC) - timedelta(days=settings.history_retention_days)
        request.older_than.FromDatetime(cutoff)
        pruned: memory_pb2.PruneHistoryResponse = await stub.PruneHistory(request)
        return PassReport(reply, pruned.deleted)


async def _main() -> None:
    settings = ConsolidateSettings.load()
    configure_logging("memory-consolidate", level=settings.log_level, fmt=settings.log_format)
    try:
        report = await consolidate_once(settings)
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc)
        raise StartupError(f"Consolidate failed: [{err.code.name.lower()}] {err.message}") from None
    reply = report.consolidated
    log.info(
        "consolidate.done",
        decayed=reply.decayed,
        pruned=reply.pruned,
        merged=reply.merged,
        reflections=reply.reflections,
        pruned_turns=report.pruned_turns,
    )


def main() -> None:
    run_service("memory-consolidate", _main)


if __name__ == "__main__":
    main()
