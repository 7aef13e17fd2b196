"""Wires memory: database, history use-cases and the mTLS gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import check_database, create_engine
from tzurot.memory.config import MemorySettings
from tzurot.memory.server import MemoryServicer
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA
from tzurot.runtime.server import (
    AuthorizationPolicy,
    RunningServer,
    ServiceRegistration,
    create_server,
)
from tzurot.runtime.tls import load_tls
from tzurot.v1 import memory_pb2_grpc

SERVICE_NAME = "tzurot.v1.MemoryService"


def _methods(callers: frozenset[str], *names: str) -> dict[str, frozenset[str]]:
    return {f"/{SERVICE_NAME}/{name}": callers for name in names}


_GATEWAY = frozenset({"gateway"})
_GATEWAY_AND_INFERENCE = frozenset({"gateway", "inference"})

AUTHORIZATION: AuthorizationPolicy = {
    **_methods(
        _GATEWAY,
        "StoreExchange",
        "EditTurn",
        "DeleteTurns",
        "ClearTurns",
        "RemoveLastExchange",
        "ForgetUser",
    ),
    **_methods(_GATEWAY_AND_INFERENCE, "GetHistory", "FindTurnsByMessageId"),
    **_methods(
        _GATEWAY_AND_INFERENCE,
        "QueryMemories",
        "AddMemory",
        "DropWeakMemories",
        "CountMemories",
    ),
    # The consolidation CronJob (tzurot.memory.consolidate) calls as memory itself.
    **_methods(_GATEWAY_AND_INFERENCE | {"memory"}, "Consolidate"),
}
"""Who may call each method; anything not listed is refused (default_allowed is empty)."""


@dataclass
class MemoryApp:
    running: RunningServer
    engine: AsyncEngine
    grace: float

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        await self.running.stop(self.grace)
        await self.engine.dispose()


async def start_memory(settings: MemorySettings) -> MemoryApp:
    """Starts memory: checks certificates and the migrated database, then serves."""
    # Local configuration fails first, before the network is touched.
    load_tls(settings.tls_dir)
    engine = create_engine(
        settings.database_url.get_secret_value(), server_settings={"application_name": "memory"}
    )
    try:
        await check_database(engine, SCHEMA)
        servicer = MemoryServicer(
            History(PostgresTurnStore(engine), default_limit=settings.history_limit)
        )
        running = await create_server(
            service="memory",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: memory_pb2_grpc.add_MemoryServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            authorization=AUTHORIZATION,
            default_allowed=frozenset(),
        )
        await running.start()
    except BaseException:
        await engine.dispose()
        raise
    return MemoryApp(running=running, engine=engine, grace=settings.grace_seconds)
