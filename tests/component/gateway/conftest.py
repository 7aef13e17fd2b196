"""Gateway component fixtures: a migrated `core` schema, the store, and fakes of the ports.

The fakes implement `tzurot.gateway.ports` in memory. They stand in for our own inference,
memory and keyvault services at this level only; contract and e2e tests use the real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.cli.localdb import create_database, with_database
from tzurot.db.engine import async_url, create_engine
from tzurot.db.migrate import upgrade
from tzurot.gateway.admin import Admin
from tzurot.gateway.domain import (
    Actor,
    GenerateCommand,
    HistoryTurn,
    KeyCheck,
    KeyRestriction,
    KeyUse,
    Location,
    Personality,
    ReplyChunk,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    Usage,
    WalletKey,
)
from tzurot.gateway.migrations import SCHEMA, SCRIPT_LOCATION
from tzurot.gateway.personalities import PersonalitySeed, parse_seed_yaml
from tzurot.gateway.resolve import global_default_config
from tzurot.gateway.service import Gateway, GatewayLimits
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.tables import metadata
from tzurot.gateway.voice import SpeechBilled, SpeechDone, Voice
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.errors import NotFound, TzurotError, Unimplemented
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

SEEDS = Path(__file__).parents[3] / "personalities"
USAGE = Usage(
    provider="openrouter", model="anthropic/claude-sonnet-4.5", input_tokens=42, output_tokens=7
)
MAX_MESSAGE_CHARS = 2000


# ---- database ----


@pytest.fixture(scope="session")
def core_template(postgres_url: str) -> str:
    """A database migrated to head once per run, which `core_url` copies."""
    name = f"core_template_{uuid.uuid4().hex[:12]}"
    upgrade(SCRIPT_LOCATION, create_database(postgres_url, name), SCHEMA)
    return name


@pytest.fixture(scope="module")
async def core_database(postgres_url: str, core_template: str) -> str:
    """A database for this test module with schema `core` at head (a copy of the template)."""
    name = f"test_{uuid.uuid4().hex[:20]}"
    engine = create_async_engine(
        async_url(postgres_url), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'create database "{name}" template "{core_template}"'))
    finally:
        await engine.dispose()
    return with_database(postgres_url, name)


@pytest.fixture
async def core_url(core_database: str) -> str:
    """The module's database, emptied for this test."""
    names = ", ".join(f"{table.schema}.{table.name}" for table in metadata.sorted_tables)
    engine = create_async_engine(async_url(core_database), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"truncate {names} restart identity cascade"))
    finally:
        await engine.dispose()
    return core_database


@pytest.fixture
def migrated_url(fresh_database: DatabaseFactory) -> str:
    """A new database migrated to head by Alembic itself."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA)
    return url


@pytest.fixture
async def engine(core_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(core_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> GatewayStore:
    return GatewayStore(engine)


def seed(name: str) -> PersonalitySeed:
    """One of the seeds the repository ships in personalities/."""
    path = SEEDS / f"{name}.yaml"
    return parse_seed_yaml(path.read_bytes(), source=path.name)


# ---- fakes of the ports ----


def answer(*chunks: str, usage: Usage = USAGE, reasoning: str = "") -> list[ReplyEvent]:
    """A scripted inference stream: the chunks, then the whole answer."""
    return [
        *(ReplyChunk(c) for c in chunks),
        ReplyFinished(
            content="".join(chunks), usage=usage, finish_reason="stop", reasoning=reasoning
        ),
    ]


@dataclass
class FakeInference:
    """Replays `script`; then raises `error` if set. With `gate`, waits on it between events."""

    script: list[ReplyEvent] = field(default_factory=lambda: answer("Hello", ", ", "mortal."))
    error: Exception | None = None
    gate: asyncio.Event | None = None
    key_error: TzurotError | None = None
    key_restriction: KeyRestriction | None = None
    """What the provider restricts a key it authenticated from (None: an unrestricted key)."""
    requests: list[ReplyRequest] = field(default_factory=list)
    validated: list[tuple[str, str]] = field(default_factory=list)
    checked: list[tuple[str, str]] = field(default_factory=list)
    first_event_sent: asyncio.Event = field(default_factory=asyncio.Event)
    streams_closed: int = 0

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        self.requests.append(request)
        try:
            for index, event in enumerate(self.script):
                if index and self.gate is not None:
                    await self.gate.wait()
                yield event
                self.first_event_sent.set()
            if self.error is not None:
                raise self.error
        finally:
            self.streams_closed += 1

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        self.validated.append((provider, api_key.get_secret_value()))
        if self.key_error is not None:
            raise self.key_error
        return KeyCheck(3, self.key_restriction)

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        self.checked.append((user_id, provider))
        if self.key_error is not None:
            raise self.key_error
        return KeyCheck(3, self.key_restriction)


@dataclass(frozen=True)
class StoredExchange:
    job_id: str
    conversation_id: str
    personality_id: str
    user_id: str
    turns: tuple[HistoryTurn, ...]
    used_memory_ids: tuple[str, ...] = ()
    form_memories: bool = True


@dataclass
class FakeMemory:
    """Memory's history in a list. Like memory, a forget leaves a tombstone: an exchange of a
    forgotten user or personality is accepted and not stored (memory's tombstones.py)."""

    exchanges: list[StoredExchange] = field(default_factory=list)
    error: TzurotError | None = None
    added: dict[str, common.Memory] = field(default_factory=dict)
    imported_exchanges: dict[str, mem.StoreExchangeRequest] = field(default_factory=dict)
    consolidations: int = 0
    forgotten_personalities: list[str] = field(default_factory=list)
    forgotten_users: list[str] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)
    """Job ids of exchanges accepted and not stored: their user or personality was forgotten."""

    async def consolidate(self) -> None:
        self.consolidations += 1

    async def store_exchange(
        self,
        *,
        job_id: str,
        conversation_id: str,
        personality_id: str,
        user_id: str,
        turns: Sequence[HistoryTurn],
        used_memory_ids: Sequence[str] = (),
        extract_facts: bool = False,
        form_memories: bool = True,
    ) -> None:
        if self.error is not None:
            raise self.error
        if personality_id in self.forgotten_personalities or user_id in self.forgotten_users:
            self.not_stored.append(job_id)
            return
        self.exchanges.append(
            StoredExchange(
                job_id,
                conversation_id,
                personality_id,
                user_id,
                tuple(turns),
                tuple(used_memory_ids),
                form_memories,
            )
        )

    async def clear_turns(
        self, conversation_id: str, personality_id: str, user_id: str | None
    ) -> int:
        gone = [
            e
            for e in self.exchanges
            if (e.conversation_id, e.personality_id) == (conversation_id, personality_id)
            and user_id in (None, e.user_id)
        ]
        self.exchanges = [e for e in self.exchanges if e not in gone]
        return sum(len(e.turns) for e in gone)

    async def remove_last_exchange(
        self, conversation_id: str, personality_id: str, user_id: str
    ) -> list[HistoryTurn]:
        for exchange in reversed(self.exchanges):
            if (exchange.conversation_id, exchange.personality_id, exchange.user_id) == (
                conversation_id,
                personality_id,
                user_id,
            ):
                self.exchanges.remove(exchange)
                return list(exchange.turns)
        return []

    async def find_turns(self, message_ids: Sequence[str]) -> list[HistoryTurn]:
        wanted = set(message_ids)
        return [
            dataclasses.replace(turn, job_id=e.job_id)
            for e in self.exchanges
            for turn in e.turns
            if wanted.intersection(turn.message_ids)
        ]

    async def delete_turns(self, message_ids: Sequence[str]) -> int:
        doomed = set(message_ids)
        before = sum(len(e.turns) for e in self.exchanges)
        self.exchanges = [
            dataclasses.replace(
                e, turns=tuple(t for t in e.turns if not doomed.intersection(t.message_ids))
            )
            for e in self.exchanges
        ]
        return before - sum(len(e.turns) for e in self.exchanges)

    async def forget_user(self, user_id: str) -> int:
        self.forgotten_users.append(user_id)
        gone = [e for e in self.exchanges if e.user_id == user_id]
        self.exchanges = [e for e in self.exchanges if e not in gone]
        return sum(len(e.turns) for e in gone)

    async def forget_personality(self, personality_id: str) -> int:
        if self.error is not None:
            raise self.error
        gone = [e for e in self.exchanges if e.personality_id == personality_id]
        self.exchanges = [e for e in self.exchanges if e not in gone]
        self.forgotten_personalities.append(personality_id)
        return sum(len(e.turns) for e in gone)

    async def export_user(self, user_id: str) -> mem.ExportUserResponse:
        """The user's stored turns (this fake keeps no long-term memories)."""
        return mem.ExportUserResponse(
            turns=[
                common.Turn(
                    role=common.ROLE_USER if turn.role == "user" else common.ROLE_ASSISTANT,
                    author_id=turn.author_id,
                    author_name=turn.author_name,
                    content=turn.content,
                    message_ids=list(turn.message_ids),
                    personality_id=exchange.personality_id,
                    channel_id=exchange.conversation_id,
                    job_id=exchange.job_id,
                )
                for exchange in self.exchanges
                if exchange.user_id == user_id
                for turn in exchange.turns
            ]
        )

    # Long-term memory arrives with its own issue: like memory today, these are unimplemented.
    async def query_memories(self, request: mem.QueryMemoriesRequest) -> mem.QueryMemoriesResponse:
        raise Unimplemented("QueryMemories is not available yet")

    async def drop_weak_memories(
        self, request: mem.DropWeakMemoriesRequest
    ) -> mem.DropWeakMemoriesResponse:
        raise Unimplemented("DropWeakMemories is not available yet")

    async def count_memories(self, request: mem.CountMemoriesRequest) -> mem.CountMemoriesResponse:
        raise Unimplemented("CountMemories is not available yet")

    async def add_memory(self, request: mem.AddMemoryRequest) -> mem.AddMemoryResponse:
        """Like memory's: a memory with a known id is returned as stored (existed)."""
        given = request.memory
        if given.id and given.id in self.added:
            return mem.AddMemoryResponse(memory=self.added[given.id], existed=True)
        self.added[given.id] = given
        return mem.AddMemoryResponse(memory=given)

    async def has_history(self, conversation_id: str, personality_id: str) -> bool:
        return any(
            request.channel_id == conversation_id and request.personality_id == personality_id
            for request in self.imported_exchanges.values()
        )

    async def import_exchange(self, request: mem.StoreExchangeRequest) -> mem.StoreExchangeResponse:
        """Like memory's: a job id stored before is not stored again (created false)."""
        created = request.job_id not in self.imported_exchanges
        if created:
            self.imported_exchanges[request.job_id] = request
        return mem.StoreExchangeResponse(turns=list(request.turns), created=created)

    async def edit_turn(self, message_id: str, content: str, *, job_id: str = "") -> None:
        """Like memory's: the newest turn posted as the message (of `job_id`'s exchange, when
        set) takes `content`."""
        for index in reversed(range(len(self.exchanges))):
            exchange = self.exchanges[index]
            if job_id and exchange.job_id != job_id:
                continue
            for position in reversed(range(len(exchange.turns))):
                turn = exchange.turns[position]
                if message_id in turn.message_ids:
                    turns = list(exchange.turns)
                    turns[position] = dataclasses.replace(turn, content=content)
                    self.exchanges[index] = dataclasses.replace(exchange, turns=tuple(turns))
                    return
        raise NotFound("no turn was posted as this message", reason="TURN_NOT_FOUND")

    async def list_memories(self, request: mem.ListMemoriesRequest) -> mem.ListMemoriesResponse:
        raise Unimplemented("ListMemories is not available here")

    async def delete_memory(self, request: mem.DeleteMemoryRequest) -> mem.DeleteMemoryResponse:
        raise Unimplemented("DeleteMemory is not available here")

    async def get_memory_mode(self, personality_id: str, user_id: str) -> mem.MemoryMode:
        raise Unimplemented("GetMemoryMode is not available here")

    async def set_memory_mode(
        self, personality_id: str, user_id: str, mode: mem.MemoryMode
    ) -> mem.MemoryMode:
        raise Unimplemented("SetMemoryMode is not available here")


@dataclass
class FakeKeyVault:
    keys: dict[tuple[str, str], SecretStr] = field(default_factory=dict)
    uses: list[KeyUse] = field(default_factory=list)

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        self.uses.extend(uses)

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        self.keys[user_id, provider] = api_key
        return self._record(provider, api_key)

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        return [
            self._record(provider, key)
            for (owner, provider), key in sorted(self.keys.items())
            if owner == user_id
        ]

    async def delete_key(self, user_id: str, provider: str) -> bool:
        return self.keys.pop((user_id, provider), None) is not None

    @staticmethod
    def _record(provider: str, key: SecretStr) -> WalletKey:
        return WalletKey(
            provider=provider,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            last_used_at=None,
            hint=key.get_secret_value()[-4:],
        )


@dataclass
class FakeSpeech:
    """Inference's voice RPCs over ElevenLabs accounts by user id (the voice ids each holds).

    A clone makes a voice in its cloner's account, marked for its personality (`cloned`: each
    one's user and personality id; it deletes nothing else), then waits for `clone_gate` when set
    (`clone_made` is set first: the voice is in her account, ElevenLabs has not answered
    yet). A delete with a user's key finds the voice in
    that user's account only; the first one waits for `delete_gate` when set (`delete_started`
    is set first); each raises `error` when set."""

    accounts: dict[str, set[str]] = field(default_factory=dict)
    error: TzurotError | None = None
    deletes: list[tuple[str, str]] = field(default_factory=list)
    cloned: list[tuple[str, str]] = field(default_factory=list)
    listed: list[tuple[str, str]] = field(default_factory=list)
    """Each `marked_clones` call: whose account, for which personality."""
    marks: dict[str, str] = field(default_factory=dict)
    """Each clone's mark: the personality id it was made for."""
    clone_gate: asyncio.Event | None = None
    clone_made: asyncio.Event = field(default_factory=asyncio.Event)
    delete_gate: asyncio.Event | None = None
    delete_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def marked_clones(self, user_id: str, personality_id: str) -> list[str]:
        self.listed.append((user_id, personality_id))
        if self.error is not None:
            raise self.error
        return sorted(
            v for v in self.accounts.get(user_id, set()) if self.marks.get(v) == personality_id
        )

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        self.deletes.append((user_id, voice_id))
        first = not self.delete_started.is_set()
        self.delete_started.set()
        if first and self.delete_gate is not None:
            await self.delete_gate.wait()
        if self.error is not None:
            raise self.error
        account = self.accounts.get(user_id, set())
        found = voice_id in account
        account.discard(voice_id)
        return found

    def synthesize_speech(
        self, user_id: str, voice: Voice, text: str
    ) -> AsyncIterator[bytes | SpeechBilled | SpeechDone]:
        raise Unimplemented("no speech here")

    async def clone_voice(
        self,
        user_id: str,
        name: str,
        description: str,
        samples: Sequence[tuple[str, bytes]],
        *,
        personality_id: str,
    ) -> str:
        voice_id = f"clone-{len(self.cloned) + 1}"
        self.cloned.append((user_id, personality_id))
        self.marks[voice_id] = personality_id
        self.accounts.setdefault(user_id, set()).add(voice_id)
        self.clone_made.set()
        if self.clone_gate is not None:
            await self.clone_gate.wait()
        return voice_id


@pytest.fixture
def inference() -> FakeInference:
    return FakeInference()


@dataclass
class MemoryConfirmedMeanwhile(FakeMemory):
    """Runs `meanwhile` right after memory forgets a user or a personality, as a concurrent
    request would (once)."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def forget_user(self, user_id: str) -> int:
        return await self._then(await super().forget_user(user_id))

    async def forget_personality(self, personality_id: str) -> int:
        return await self._then(await super().forget_personality(personality_id))

    async def _then(self, forgotten: int) -> int:
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            await run()
        return forgotten


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def keyvault() -> FakeKeyVault:
    return FakeKeyVault()


LIMITS = GatewayLimits(
    max_message_chars=MAX_MESSAGE_CHARS,
    max_history_messages=30,
    duplicate_wait_seconds=5.0,
    default_config=global_default_config("openrouter", "openai/gpt-4o-mini"),
)


@pytest.fixture
async def gateway(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> AsyncIterator[Gateway]:
    made = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=LIMITS,
    )
    yield made
    await made.stop_background()  # no background work outlives the test's engine


UNFINISHED_AFTER = 0.05
"""`unfinished_after_seconds` of the gateways that sweep abandoned answers in these tests."""


def sweeping_gateway(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    **limits: Any,
) -> Gateway:
    """A gateway whose unfinished-answer sweep hands over answers UNFINISHED_AFTER after they
    ended (`limits`: other GatewayLimits to change)."""
    changed = dataclasses.replace(LIMITS, unfinished_after_seconds=UNFINISHED_AFTER, **limits)
    return Gateway(
        store=store, inference=inference, memory=memory, keyvault=keyvault, limits=changed
    )


@pytest.fixture
async def sweeping(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> AsyncIterator[Gateway]:
    """`sweeping_gateway`, its background work stopped at the end: no sweep's regeneration
    outlives the test's engine."""
    made = sweeping_gateway(store, inference, memory, keyvault)
    yield made
    await made.stop_background()


@pytest.fixture
def admin(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> Admin:
    """The admin use-cases over the same fakes, with `cli` as the operator."""
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )


@pytest.fixture
def speech() -> FakeSpeech:
    return FakeSpeech()


@pytest.fixture
def voiced_admin(
    gateway: Gateway,
    store: GatewayStore,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    speech: FakeSpeech,
) -> Admin:
    """`admin`, with inference's voice RPCs wired."""
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
        speech=speech,
    )


@pytest.fixture
def wallet(gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault) -> Wallet:
    return Wallet(users=gateway, checker=inference, keyvault=keyvault)


@pytest.fixture
async def lilith(store: GatewayStore) -> Personality:
    personality, created = await store.import_personality(seed("lilith"), owner_user_id=None)
    assert created
    return personality


# ---- commands ----

ALICE = Actor(platform_user_id="100000000000000001", display_name="Alice")


def command(
    content: str = "Hello Lilith",
    *,
    key: str = "msg-1",
    personality: str = "lilith",
    actor: Actor = ALICE,
    location: Location = Location(guild_id="guild-1", channel_id="channel-1"),  # noqa: B008 - frozen
    **fields: Any,
) -> GenerateCommand:
    return GenerateCommand(
        actor=actor,
        location=location,
        personality=personality,
        content=content,
        idempotency_key=key,
        message_ids=(key,),
        **fields,
    )


# ---- PKI and logs ----


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev CA and a certificate folder for every service identity (one per run)."""
    path = tmp_path_factory.mktemp("gateway-pki") / "pki"
    generate_dev_pki(path, SERVICE_IDENTITIES)
    return path


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """The production logging pipeline at DEBUG, with no secrets known to the redactor."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("gateway", level="DEBUG", fmt="json", secrets=())
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
