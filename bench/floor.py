"""The in-process floor of figure 1: the same domain objects, wired without gRPC.

Gateway's `Gateway` use-case runs on its real store, with small adapters in place of its
gRPC clients that call inference's `Inference`, memory's `History` and keyvault's `KeyVault`
directly. Memory's long-term memory is the real one too (the same embedder instance as the
mesh's memory, so one model is loaded): a reply reads its turns and memories through
memory's `ReplyContextReader` (as GetReplyContext does in the mesh), and each stored exchange
wakes the floor's own `Formation` worker, as StoreExchange does in memory. The adapters
still convert through the services' own proto converters (what the servicers and clients
do), so the floor differs from the mesh only by transport: no serialization, no
HTTP/2, no TLS, no interceptors, no access logs, no second process hop. Postgres and the fake
provider's HTTP are the same for both.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from tzurot.db.engine import create_engine
from tzurot.gateway import convert as gw_convert
from tzurot.gateway.domain import HistoryTurn as GatewayTurn
from tzurot.gateway.domain import KeyCheck, ReplyEvent, ReplyRequest, WalletKey
from tzurot.gateway.domain import KeyUse as GatewayKeyUse
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.resolve import global_default_config
from tzurot.gateway.service import Gateway, GatewayLimits
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import Wallet
from tzurot.inference import convert as inf_convert
from tzurot.inference.clients import query_request, reply_context_request
from tzurot.inference.domain import HistoryTurn as InferenceTurn
from tzurot.inference.domain import MemoryItem, ReplyContext, ReplyContextQuery
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.service import Inference
from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.domain import KeyUse
from tzurot.keyvault.masterkey import parse_master_key_ring
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.memory import convert as mem_convert
from tzurot.memory.embedding import Embedder
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.reply_context import ReplyContextReader
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.runtime.errors import NotFound
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem

UNREACHABLE_BUCKET = BucketPolicy(capacity=10**9, refill_per_second=10**9)
"""The mesh's rate limits in bench/env.py: checked on every turn, never refusing."""


class DirectInference:
    """Gateway's Inference port, calling inference's use-case in this process."""

    def __init__(self, inference: Inference) -> None:
        self._inference = inference

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        domain = inf_convert.reply_request(gw_convert.reply_request(request))
        async with contextlib.aclosing(self._inference.generate_reply(domain)) as events:
            async for event in events:
                yield gw_convert.reply_event(inf_convert.reply_event(event))

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        return KeyCheck(await self._inference.validate_key(provider, api_key=api_key))

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        return KeyCheck(await self._inference.validate_key(provider, user_id=user_id))


class DirectMemory:
    """Gateway's Memory port, calling memory's History use-case in this process; a new
    exchange wakes the formation worker, as memory's StoreExchange does."""

    def __init__(self, history: History, formation: Formation | None = None) -> None:
        self._history = history
        self._formation = formation

    async def store_exchange(
        self,
        *,
        job_id: str,
        conversation_id: str,
        personality_id: str,
        user_id: str,
        turns: Sequence[GatewayTurn],
        used_memory_ids: Sequence[str] = (),
        extract_facts: bool = False,
        form_memories: bool = True,
    ) -> None:
        stored = await self._history.store_exchange(
            job_id,
            conversation_id,
            personality_id,
            user_id,
            [
                mem_convert.new_turn(turn)
                for turn in gw_convert.exchange_turns(
                    turns,
                    job_id=job_id,
                    conversation_id=conversation_id,
                    personality_id=personality_id,
                )
            ],
            used_memory_ids=used_memory_ids,
            extract_facts=extract_facts,
            imported=not form_memories,  # as the client sends it: a scheduled turn forms none
        )
        if stored.created and self._formation is not None:
            self._formation.kick()
        mem_convert.turns(stored.turns)  # what the servicer answers

    async def consolidate(self) -> None:
        """Consolidation by activity is off in the floor (consolidate_every is 0)."""


class DirectHistory:
    """Inference's HistorySource, calling memory's History use-case in this process."""

    def __init__(self, history: History) -> None:
        self._history = history

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[InferenceTurn]:
        stored = await self._history.get_history(channel_id, personality_id, limit)
        turns = (inf_convert.history_turn(turn) for turn in mem_convert.turns(stored))
        return [turn for turn in turns if turn is not None]


class DirectMemories:
    """Inference's MemorySource: memory's LongTermMemory.query in this process, through the
    request and answer messages QueryMemories carries."""

    def __init__(self, longterm: LongTermMemory) -> None:
        self._longterm = longterm

    async def relevant_memories(
        self,
        *,
        personality_id: str,
        user_id: str,
        query: str,
        limit: int,
        threshold: float,
        exclude_after: datetime | None,
    ) -> list[MemoryItem]:
        request = query_request(
            personality_id=personality_id,
            user_id=user_id,
            query=query,
            limit=limit,
            threshold=threshold,
            exclude_after=exclude_after,
        )
        found = await self._longterm.query(
            request.personality_id,
            request.user_id,
            request.query,
            limit=request.limit,
            threshold=request.threshold,
            no_threshold=request.no_threshold,
            exclude_after=mem_convert.optional_datetime(request, "exclude_after"),
        )
        reply = mem.QueryMemoriesResponse(memories=[mem_convert.memory(m) for m in found])
        return [inf_convert.memory_item(memory) for memory in reply.memories]


class DirectReplyContext:
    """Inference's ReplyContextSource: memory's ReplyContextReader in this process, through
    the request and answer messages GetReplyContext carries."""

    def __init__(self, reader: ReplyContextReader) -> None:
        self._reader = reader

    async def reply_context(self, query: ReplyContextQuery) -> ReplyContext:
        request = reply_context_request(query)
        found = await self._reader.read(mem_convert.reply_context_query(request))
        return inf_convert.reply_context(mem_convert.reply_context(found))


class DirectKeyVault:
    """Inference's KeyDecryptor and gateway's KeyVault port over the KeyVault use-case."""

    def __init__(self, vault: KeyVault) -> None:
        self._vault = vault

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        try:
            return await self._vault.decrypt(user_id, provider)
        except NotFound:
            return None

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        record = await self._vault.put_key(user_id, provider, api_key)
        return WalletKey(
            provider=record.provider,
            hint=record.hint,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        return []

    async def delete_key(self, user_id: str, provider: str) -> bool:
        return await self._vault.delete_key(user_id, provider)

    async def record_uses(self, uses: Sequence[GatewayKeyUse]) -> None:
        await self._vault.record_uses(
            [KeyUse(u.user_id, u.provider, u.used_at, u.rejected) for u in uses]
        )


@dataclass
class Floor:
    """What the gateway servicer does for a client, without the servicer or gRPC."""

    gateway: Gateway
    wallet: Wallet

    async def generate(self, request: gw.GenerateRequest) -> AsyncIterator[gw.GenerateResponse]:
        command = gw_convert.generate_command(request)
        async with contextlib.aclosing(self.gateway.generate(command)) as events:
            async for event in events:
                yield gw_convert.generate_event(event)

    async def confirm(self, job_id: str, message_ids: Sequence[str]) -> None:
        job = await self.gateway.confirm_delivery(job_id, list(message_ids))
        gw_convert.job(job)


def _ring() -> MasterKeyRing:
    return parse_master_key_ring(SecretStr(base64.b64encode(secrets.token_bytes(32)).decode()))


@asynccontextmanager
async def floor(database_url: str, provider_url: str, embedder: Embedder) -> AsyncIterator[Floor]:
    """The floor over a migrated database (its own engines, as each service has its own),
    with long-term memory on `embedder` (loaded)."""
    engines = [create_engine(database_url) for _ in range(3)]
    llm = LlmClient(timeout_seconds=120.0)
    turn_store = PostgresTurnStore(engines[1])
    memory_store = PostgresMemoryStore(engines[1])
    longterm = LongTermMemory(memory_store, embedder)
    formation = Formation(memory_store, longterm)
    history = History(turn_store)
    vault = DirectKeyVault(
        KeyVault(PostgresKeyStore(engines[2]), _ring(), caller=lambda: "inference")
    )
    inference = Inference(
        providers=ProviderRegistry({"openrouter": provider_url, "openai": provider_url}),
        keys=KeyResolver(vault),
        history=DirectHistory(history),
        llm=llm,
        history_limit=30,
        memories=DirectMemories(longterm),
        context=DirectReplyContext(ReplyContextReader(history, longterm)),
    )
    store = GatewayStore(engines[0])
    gateway = Gateway(
        store=store,
        inference=DirectInference(inference),
        memory=DirectMemory(history, formation),
        keyvault=vault,
        limits=GatewayLimits(
            max_message_chars=16_000,
            max_history_messages=50,
            duplicate_wait_seconds=480.0,
            default_config=global_default_config("openrouter", "openai/gpt-4o-mini"),
            user_bucket=UNREACHABLE_BUCKET,
            channel_bucket=UNREACHABLE_BUCKET,
        ),
    )
    wallet = Wallet(users=gateway, checker=DirectInference(inference), keyvault=vault)
    formation.start()
    try:
        yield Floor(gateway, wallet)
    finally:
        await formation.stop()
        await llm.aclose()
        for engine in engines:
            await engine.dispose()
