"""gRPC adapters for the ports gateway calls: inference, memory and keyvault."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from typing import TypeVar

import grpc
from pydantic import SecretStr

from tzurot.gateway import convert, voice_convert
from tzurot.gateway.cancelled_usage import with_announced_prompt
from tzurot.gateway.domain import (
    HistoryTurn,
    KeyCheck,
    KeyUse,
    ReplyEvent,
    ReplyRequest,
    SkillInfo,
    WalletKey,
)
from tzurot.gateway.ports import MARKED_CLONES_WAIT_SECONDS
from tzurot.gateway.provider_list import ProviderList
from tzurot.gateway.voice import SpeechBilled, SpeechDone, Voice
from tzurot.runtime.client import wait_connected
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

T = TypeVar("T")

CONNECT_WAIT_SECONDS = 10.0
"""How long an answer waits for the channel to inference to (re)connect before it fails as
"the inference is restarting": a restarted inference is serving seconds before the channel's
reconnect backoff (up to 5 s) tries it again."""

PROVIDERS_TIMEOUT_SECONDS = 5.0
"""How long a wallet call waits for inference's list of providers before it goes on with the
built-in list (provider_list.py `InferenceProviders`)."""


HISTORY_CONNECT_WAIT_SECONDS = 5.0
"""How long storing a delivered exchange waits for the channel to memory to (re)connect: a
restarted memory serves before the channel's reconnect backoff tries it again, and an
exchange stored now is in the very next prompt (a later sweep stores it otherwise)."""


class GrpcInference:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        generate_timeout: float,
        connect_wait: float = CONNECT_WAIT_SECONDS,
    ) -> None:
        self._channel = channel
        self._connect_wait = connect_wait
        self._stub = inf_grpc.InferenceServiceStub(channel)
        self._generate_timeout = generate_timeout

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        await self._connected()
        call = self._stub.GenerateReply(
            convert.reply_request(request), timeout=self._generate_timeout
        )
        try:
            async for msg in call:
                if convert.known_reply_event(msg):
                    yield convert.reply_event(msg)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        finally:
            call.cancel()  # no-op once finished; stops inference if our caller went away

    async def _connected(self) -> None:
        """A message that arrives while inference restarts, or just after, is answered once it
        is back rather than failed at once. Only a new answer waits; nothing is sent twice."""
        await wait_connected(self._channel, self._connect_wait)

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        try:
            reply = await self._stub.ValidateKey(
                inf.ValidateKeyRequest(provider=provider, api_key=api_key.get_secret_value())
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        return convert.key_check(reply)

    async def list_providers(self) -> ProviderList:
        """The providers inference says a user may hold a key for, those of them that speak
        and those that take no key (each None from an inference older than its field:
        `speech_providers`, `keyless_providers`); provider_list.py `InferenceProviders`
        caches them. Within PROVIDERS_TIMEOUT_SECONDS."""
        try:
            reply = await self._stub.ListProviders(
                inf.ListProvidersRequest(), timeout=PROVIDERS_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        speech = frozenset(reply.speech_providers) if reply.speech_providers_listed else None
        keyless = frozenset(reply.keyless_providers) if reply.keyless_providers_listed else None
        return ProviderList(frozenset(reply.providers), speech, keyless)

    async def extract_facts(self, request: inf.ExtractFactsRequest) -> inf.ExtractFactsResponse:
        try:
            reply: inf.ExtractFactsResponse = await self._stub.ExtractFacts(
                request, timeout=self._generate_timeout
            )
        except grpc.aio.AioRpcError as exc:
            # The prompt inference announced, kept for a call cut before it could report.
            raise with_announced_prompt(
                from_rpc_error(exc, service="inference"), exc.initial_metadata()
            ) from None
        return reply

    async def list_skills(self) -> list[SkillInfo]:
        """The skills inference offers (after the operator's global switch)."""
        try:
            reply = await self._stub.ListSkills(inf.ListSkillsRequest())
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return [convert.skill_info_in(s) for s in reply.skills]

    async def synthesize_speech(
        self, user_id: str, voice: Voice, text: str
    ) -> AsyncGenerator[bytes | SpeechBilled | SpeechDone, None]:
        call = self._stub.SynthesizeSpeech(
            inf.SynthesizeSpeechRequest(
                user_id=user_id, voice=voice_convert.voice_proto(voice), text=text
            ),
            timeout=self._generate_timeout,
        )
        try:
            async for msg in call:
                kind = msg.WhichOneof("event")
                if kind == "chunk":
                    yield msg.chunk.data
                elif kind == "billed":
                    yield voice_convert.speech_billed(msg.billed)
                elif kind == "finished":
                    yield voice_convert.speech_done(msg.finished)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        finally:
            call.cancel()

    async def clone_voice(
        self,
        user_id: str,
        name: str,
        description: str,
        samples: Sequence[tuple[str, bytes]],
        *,
        personality_id: str,
    ) -> str:
        header = inf.CloneVoiceHeader(
            user_id=user_id,
            name=name,
            description=description,
            # The mark alone, never `personality_id`: an older inference would delete every
            # clone marked for it but keep_voice_id, voices in use too (the proto says why).
            mark_personality_id=personality_id,
        )

        async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
            yield inf.CloneVoiceRequest(header=header)
            for filename, data in samples:
                yield inf.CloneVoiceRequest(
                    sample=inf.CloneVoiceSample(filename=filename, data=data)
                )

        try:
            reply = await self._stub.CloneVoice(parts(), timeout=self._generate_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        return reply.voice_id

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        try:
            reply = await self._stub.DeleteVoice(
                inf.DeleteVoiceRequest(user_id=user_id, voice_id=voice_id),
                timeout=self._generate_timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        return reply.deleted

    async def marked_clones(self, user_id: str, personality_id: str) -> list[str]:
        try:
            reply = await self._stub.ListMarkedClones(
                inf.ListMarkedClonesRequest(user_id=user_id, personality_id=personality_id),
                timeout=MARKED_CLONES_WAIT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        return list(reply.voice_ids)

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        try:
            reply = await self._stub.ValidateKey(
                inf.ValidateKeyRequest(provider=provider, user_id=user_id)
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="inference") from None
        return convert.key_check(reply)


class GrpcMemory:
    def __init__(
        self, channel: grpc.aio.Channel, *, connect_wait: float = HISTORY_CONNECT_WAIT_SECONDS
    ) -> None:
        self._channel = channel
        self._connect_wait = connect_wait
        self._stub = mem_grpc.MemoryServiceStub(channel)

    @staticmethod
    async def _call(rpc: Awaitable[T], *, service: str | None = "memory") -> T:
        """Awaits one unary call; a failed call becomes the typed error memory raised.

        `service=None`: a transport failure keeps its raw status (as those calls always did)."""
        try:
            return await rpc
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service=service) from None

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
        request = mem.StoreExchangeRequest(
            job_id=job_id,
            channel_id=conversation_id,
            personality_id=personality_id,
            user_id=user_id,
            turns=convert.exchange_turns(
                turns,
                job_id=job_id,
                conversation_id=conversation_id,
                personality_id=personality_id,
            ),
            used_memory_ids=used_memory_ids,
            extract_facts=extract_facts,
            # No long-term memory forms from it (memory's `imported`: a scheduled turn's).
            imported=not form_memories,
        )
        await wait_connected(self._channel, self._connect_wait)  # idempotent on the job id
        await self._call(self._stub.StoreExchange(request))

    async def claim_fact_jobs(self, limit: int, lease_seconds: int) -> list[mem.FactBatch]:
        reply = await self._call(
            self._stub.ClaimFactJobs(
                mem.ClaimFactJobsRequest(limit=limit, lease_seconds=lease_seconds)
            )
        )
        return list(reply.batches)

    async def store_facts(self, request: mem.StoreFactsRequest) -> mem.StoreFactsResponse:
        reply: mem.StoreFactsResponse = await self._call(self._stub.StoreFacts(request))
        return reply

    async def clear_turns(
        self, conversation_id: str, personality_id: str, user_id: str | None
    ) -> int:
        reply = await self._call(
            self._stub.ClearTurns(
                mem.ClearTurnsRequest(
                    channel_id=conversation_id,
                    personality_id=personality_id,
                    user_id=user_id or "",
                )
            )
        )
        return reply.deleted

    async def remove_last_exchange(
        self, conversation_id: str, personality_id: str, user_id: str
    ) -> list[HistoryTurn]:
        reply = await self._call(
            self._stub.RemoveLastExchange(
                mem.RemoveLastExchangeRequest(
                    channel_id=conversation_id, personality_id=personality_id, user_id=user_id
                )
            )
        )
        roles = {v: k for k, v in convert.TURN_ROLES.items()}
        return [
            HistoryTurn(
                roles.get(turn.role, "user"),
                turn.author_id,
                turn.author_name,
                turn.content,
                tuple(turn.message_ids),
            )
            for turn in reply.removed
        ]

    async def find_turns(self, message_ids: Sequence[str]) -> list[HistoryTurn]:
        reply = await self._call(
            self._stub.FindTurnsByMessageId(
                mem.FindTurnsByMessageIdRequest(message_ids=list(message_ids))
            )
        )
        return [_history_turn(turn) for turn in reply.turns]

    async def delete_turns(self, message_ids: Sequence[str]) -> int:
        reply = await self._call(
            self._stub.DeleteTurns(mem.DeleteTurnsRequest(message_ids=list(message_ids)))
        )
        return reply.deleted

    async def forget_user(self, user_id: str) -> int:
        reply = await self._call(self._stub.ForgetUser(mem.ForgetUserRequest(user_id=user_id)))
        return reply.deleted_turns + reply.deleted_memories

    async def forget_personality(self, personality_id: str) -> int:
        reply = await self._call(
            self._stub.ForgetPersonality(
                mem.ForgetPersonalityRequest(personality_id=personality_id)
            )
        )
        return reply.deleted_turns + reply.deleted_memories

    async def export_user(self, user_id: str) -> mem.ExportUserResponse:
        reply: mem.ExportUserResponse = await self._call(
            self._stub.ExportUser(mem.ExportUserRequest(user_id=user_id))
        )
        return reply

    async def query_memories(self, request: mem.QueryMemoriesRequest) -> mem.QueryMemoriesResponse:
        reply: mem.QueryMemoriesResponse = await self._call(self._stub.QueryMemories(request))
        return reply

    async def list_memories(self, request: mem.ListMemoriesRequest) -> mem.ListMemoriesResponse:
        reply: mem.ListMemoriesResponse = await self._call(self._stub.ListMemories(request))
        return reply

    async def delete_memory(self, request: mem.DeleteMemoryRequest) -> mem.DeleteMemoryResponse:
        reply: mem.DeleteMemoryResponse = await self._call(self._stub.DeleteMemory(request))
        return reply

    async def drop_weak_memories(
        self, request: mem.DropWeakMemoriesRequest
    ) -> mem.DropWeakMemoriesResponse:
        reply: mem.DropWeakMemoriesResponse = await self._call(self._stub.DropWeakMemories(request))
        return reply

    async def count_memories(self, request: mem.CountMemoriesRequest) -> mem.CountMemoriesResponse:
        reply: mem.CountMemoriesResponse = await self._call(self._stub.CountMemories(request))
        return reply

    async def consolidate(self) -> None:
        await self._call(
            self._stub.Consolidate(mem.ConsolidateRequest(), timeout=600), service=None
        )

    async def add_memory(self, request: mem.AddMemoryRequest) -> mem.AddMemoryResponse:
        reply: mem.AddMemoryResponse = await self._call(self._stub.AddMemory(request), service=None)
        return reply

    async def has_history(self, conversation_id: str, personality_id: str) -> bool:
        page = await self._call(
            self._stub.GetHistory(
                mem.GetHistoryRequest(
                    channel_id=conversation_id, personality_id=personality_id, limit=1
                )
            )
        )
        return bool(page.turns)

    async def import_exchange(self, request: mem.StoreExchangeRequest) -> mem.StoreExchangeResponse:
        reply: mem.StoreExchangeResponse = await self._call(self._stub.StoreExchange(request))
        return reply

    async def edit_turn(self, message_id: str, content: str, *, job_id: str = "") -> None:
        await self._call(
            self._stub.EditTurn(
                mem.EditTurnRequest(message_id=message_id, content=content, job_id=job_id)
            ),
            service=None,
        )

    async def get_memory_mode(self, personality_id: str, user_id: str) -> mem.MemoryMode:
        reply = await self._call(
            self._stub.GetMemoryMode(
                mem.GetMemoryModeRequest(personality_id=personality_id, user_id=user_id)
            ),
            service=None,
        )
        return reply.mode

    async def set_memory_mode(
        self, personality_id: str, user_id: str, mode: mem.MemoryMode
    ) -> mem.MemoryMode:
        reply = await self._call(
            self._stub.SetMemoryMode(
                mem.SetMemoryModeRequest(personality_id=personality_id, user_id=user_id, mode=mode)
            ),
            service=None,
        )
        return reply.mode


def _history_turn(turn: common.Turn) -> HistoryTurn:
    return HistoryTurn(
        "assistant" if turn.role == common.ROLE_ASSISTANT else "user",
        turn.author_id,
        turn.author_name,
        turn.content,
        tuple(turn.message_ids),
        job_id=turn.job_id,
    )


PUT_KEY_CONNECT_SECONDS = 2.0
PUT_KEY_SECONDS = 10.0
"""PutKey waits at most this long for keyvault's connection, then this long for its answer
(not the channel's 30 s): it runs inside the key-write fence (store/deletions.py), which holds
a pooled connection meanwhile, so a keyvault away or stalled must not pin the pool."""


class GrpcKeyVault:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = kv_grpc.KeyVaultServiceStub(channel)

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        await wait_connected(self._channel, PUT_KEY_CONNECT_SECONDS)
        try:
            reply = await self._stub.PutKey(
                kv.PutKeyRequest(
                    user_id=user_id, provider=provider, api_key=api_key.get_secret_value()
                ),
                timeout=PUT_KEY_SECONDS,
                wait_for_ready=False,
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="keyvault") from None
        return convert.key_record(reply.record)

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        try:
            reply = await self._stub.ListKeys(kv.ListKeysRequest(user_id=user_id))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="keyvault") from None
        return [convert.key_record(rec) for rec in reply.records]

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        try:
            await self._stub.MarkUsed(
                kv.MarkUsedRequest(uses=[convert.key_use(use) for use in uses])
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="keyvault") from None

    async def delete_key(self, user_id: str, provider: str) -> bool:
        try:
            reply = await self._stub.DeleteKey(
                kv.DeleteKeyRequest(user_id=user_id, provider=provider)
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="keyvault") from None
        return reply.deleted
