"""Wires memory: database, embedder, history and long-term use-cases, the formation
worker and the mTLS gRPC server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import check_database, create_engine, dispose
from tzurot.memory import scoring
from tzurot.memory.browse import MemoryBrowser
from tzurot.memory.config import MemorySettings
from tzurot.memory.embedding import Embedder, OpenAIEmbedder, openai_client
from tzurot.memory.fact_store import PostgresFactStore
from tzurot.memory.facts import Facts
from tzurot.memory.forget_personality import PersonalityForgetter
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.scope_size import LargeScope
from tzurot.memory.server import MemoryServicer
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA
from tzurot.memory.tuning import Tuning
from tzurot.memory.warm import warm_up
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
_INFERENCE = frozenset({"inference"})
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
        "ForgetPersonality",
        "ExportUser",
        "SetMemoryMode",
        "GetMemoryMode",
        "ListMemories",
        "DeleteMemory",
        "ClaimFactJobs",
        "StoreFacts",
    ),
    **_methods(_GATEWAY_AND_INFERENCE, "GetHistory", "FindTurnsByMessageId"),
    # A reply's history and memories in one call: only inference builds prompts.
    **_methods(_INFERENCE, "GetReplyContext"),
    **_methods(
        _GATEWAY_AND_INFERENCE,
        "QueryMemories",
        "AddMemory",
        "DropWeakMemories",
        "CountMemories",
    ),
    # The consolidation CronJob (tzurot.memory.consolidate) calls as memory itself.
    **_methods(_GATEWAY_AND_INFERENCE | {"memory"}, "Consolidate"),
    # Retention: a write, so gateway or the consolidation job only.
    **_methods(_GATEWAY | {"memory"}, "PruneHistory"),
}
"""Who may call each method; anything not listed is refused (default_allowed is empty)."""


@dataclass
class MemoryApp:
    running: RunningServer
    engine: AsyncEngine
    grace: float
    formation: Formation
    longterm: LongTermMemory
    embedder: Embedder
    owns_embedder: bool

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        # In-flight calls and formation's batches in flight finish within the same grace.
        await asyncio.gather(self.running.stop(self.grace), self.formation.stop(self.grace))
        if self.owns_embedder:
            await self.embedder.aclose()
        await dispose(self.engine)


def make_embedder(settings: MemorySettings) -> Embedder:
    """The configured embedder; the local model starts loading (once per process) now."""
    if settings.embedder == "openai":
        client = openai_client(
            settings.embedding_base_url or None,
            settings.embedding_api_key.get_secret_value() or "none",
        )
        return OpenAIEmbedder(client, settings.embedding_model)
    local = OnnxMiniLMEmbedder(
        settings.embedding_model_dir,
        precision=settings.embedding_precision,
        threads=settings.embedding_threads,
    )
    local.warm()
    return local


async def start_memory(settings: MemorySettings, embedder: Embedder | None = None) -> MemoryApp:
    """Starts memory: checks certificates and the migrated database, then serves.

    `embedder` replaces the configured one (tests hand in a shared instance).
    """
    # Local configuration fails first, before the network is touched.
    load_tls(settings.tls_dir)
    engine = create_engine(
        settings.database_url.get_secret_value(), server_settings={"application_name": "memory"}
    )
    owns_embedder = embedder is None
    if embedder is None:
        embedder = make_embedder(settings)  # the local model loads while the rest starts
    try:
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
        turn_store = PostgresTurnStore(engine)
        memory_store = PostgresMemoryStore(
            engine,
            ef_search=settings.hnsw_ef_search,
            large_scope=LargeScope(limit=settings.memory_exact_scope_limit),
        )
        longterm = LongTermMemory(
            memory_store, embedder, Tuning(weights=scoring.Weights(*settings.memory_weights))
        )
        formation = Formation(
            memory_store,
            longterm,
            poll_seconds=settings.formation_poll_seconds,
            gather_seconds=settings.formation_gather_seconds,
        )
        facts = Facts(PostgresFactStore(engine), turn_store, embedder)
        servicer = MemoryServicer(
            History(turn_store, default_limit=settings.history_limit),
            longterm,
            formation,
            MemoryBrowser(engine),
            facts,
            forgetter=PersonalityForgetter(engine),
            user_forgetter=UserForgetter(engine),
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
        await warm_up(engine, embedder, turn_store, memory_store, longterm)
        await running.start()
        formation.start()
    except BaseException:
        await engine.dispose()
        raise
    return MemoryApp(
        running=running,
        engine=engine,
        grace=settings.grace_seconds,
        formation=formation,
        longterm=longterm,
        embedder=embedder,
        owns_embedder=owns_embedder,
    )
