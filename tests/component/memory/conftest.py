"""Memory component fixtures: a migrated `memory` schema, its engine, the dev PKI,
embedders (a deterministic one over HTTP, and the real MiniLM loaded once), and the
service itself over mTLS gRPC with stubs to it; `lock_waiters` for tests of concurrent
sessions."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings
from tzurot.memory.domain import MemoryScope, StoredMemory
from tzurot.memory.embedding import Embedder, OpenAIEmbedder
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.tables import SCHEMA
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.channels import channels_to
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import memory_pb2_grpc as mem_grpc

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = mem_grpc.MemoryServiceAsyncStub

Connect = Callable[[str], "Stub"]
"""A stub to the running memory service, authenticated as the identity given."""


@pytest.fixture
def memory_url(fresh_database: DatabaseFactory) -> str:
    """A new database with schema `memory` migrated to head."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA)
    return url


@pytest.fixture
async def engine(memory_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(memory_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A dev CA and a certificate folder for every service identity."""
    generate_dev_pki(tmp_path / "pki", SERVICE_IDENTITIES)
    return tmp_path / "pki"


@pytest.fixture(scope="session")
async def fake_provider() -> AsyncIterator[FakeProvider]:
    """One fake OpenAI-compatible provider for the run; it serves /v1/embeddings."""
    async with FakeProvider(require_key=False) as provider:
        yield provider


@pytest.fixture(scope="session")
async def embedder(fake_provider: FakeProvider) -> AsyncIterator[Embedder]:
    """A deterministic bag-of-words embedder over real HTTP (the OpenAI-compatible path)."""
    client = AsyncOpenAI(base_url=fake_provider.base_url, api_key="none", max_retries=0)
    embedder = OpenAIEmbedder(client, "fake/embed")
    try:
        yield embedder
    finally:
        await embedder.aclose()


@pytest.fixture(scope="session")
def minilm() -> OnnxMiniLMEmbedder:
    """The real all-MiniLM-L6-v2 as memory runs it (ONNX Runtime, int8), loaded once."""
    model = OnnxMiniLMEmbedder()
    model.load()
    return model


@pytest.fixture
def memory_store(engine: AsyncEngine) -> PostgresMemoryStore:
    return PostgresMemoryStore(engine)


@pytest.fixture
def longterm(memory_store: PostgresMemoryStore, embedder: Embedder) -> LongTermMemory:
    return LongTermMemory(memory_store, embedder)


@pytest.fixture
async def app(memory_url: str, pki: Path, embedder: Embedder) -> AsyncIterator[MemoryApp]:
    """The memory service on loopback with mTLS, on `memory_url`, embedding with `embedder`."""
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    running = await start_memory(settings, embedder)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def connect(app: MemoryApp, pki: Path) -> AsyncIterator[Connect]:
    async with channels_to("memory", pki) as open_channel:
        yield lambda identity: mem_grpc.MemoryServiceStub(open_channel(app.port, identity))


async def lock_waiters(engine: AsyncEngine, count: int, *, unless: asyncio.Task[Any]) -> int:
    """Waits until `count` other sessions of this database wait for a lock, or `unless` is
    done (a session that never had to wait); how many were waiting."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        for _ in range(600):
            found = int(await conn.scalar(waiting) or 0)
            await conn.rollback()  # pg_stat_activity is read once per transaction
            if found >= count or unless.done():
                return found
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} sessions never waited for a lock")


class ForgetsDuringReflection(PostgresMemoryStore):
    """A store on which `forget(scope)` runs after consolidation read the scope's episodes,
    before it writes their summary."""

    def __init__(
        self, engine: AsyncEngine, forget: Callable[[MemoryScope], Awaitable[object]]
    ) -> None:
        super().__init__(engine)
        self._forget = forget

    async def mark_reflected(
        self, scope: MemoryScope, ids: Sequence[str], **fields: Any
    ) -> StoredMemory | None:
        await self._forget(scope)
        return await super().mark_reflected(scope, ids, **fields)


async def reflect_forgetting_meanwhile(
    engine: AsyncEngine,
    embedder: Embedder,
    scope: MemoryScope,
    forget: Callable[[MemoryScope], Awaitable[object]],
) -> int:
    """Twenty close episodes of `scope`, then consolidation's reflection with `forget`
    landing between its read and its write; how many reflections it kept."""
    memory_store = ForgetsDuringReflection(engine, forget)
    (close,) = await embedder.embed(["Yesterday I went to the climbing gym with Sam."])
    for n in range(20):
        await memory_store.insert(
            scope,
            text=f"Yesterday I went to the climbing gym with Sam, visit {n}.",
            embedding=close,
            sector="episodic",
            salience=0.5,
            source_turn_ids=[f"t{n}"],
        )
    return await LongTermMemory(memory_store, embedder).reflect()
