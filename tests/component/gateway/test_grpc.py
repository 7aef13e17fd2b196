"""GatewayService over real mTLS gRPC, backed by real Postgres.

`start_gateway` dials inference, memory and keyvault at the addresses in its settings; here
those are small in-process servers built with the real `create_server` (each with its own
identity certificate) and minimal servicers, so gateway's gRPC adapters run for real too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from tzurot.gateway.app import GatewayApp, start_gateway
from tzurot.gateway.config import GatewaySettings
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    StartupError,
    TzurotError,
    Unavailable,
    from_rpc_error,
)
from tzurot.runtime.server import RunningServer
from tzurot.runtime.tls import SERVICE_IDENTITIES
from tzurot.testing.channels import channels_to
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

from .backends_support import serve_backends
from .conftest import SEEDS

pytestmark = pytest.mark.component

PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"
ACTOR = common.Actor(user_id="100000000000000001", display_name="Alice")
WHERE = common.Location(guild_id="guild-1", channel_id="channel-1")

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = gw_grpc.GatewayServiceAsyncStub
    Context = grpc.aio.ServicerContext[Any, Any]


# ---- minimal servicers of the services gateway calls ----


class InferenceServicer(inf_grpc.InferenceServiceServicer):
    """Streams `chunks` then the answer; errors and a gate are scripted by the test."""

    def __init__(self) -> None:
        self.requests: list[inf.GenerateReplyRequest] = []
        self.chunks = ["Hello", ", ", "mortal."]
        self.fail_before_reply: list[TzurotError] = []  # one per call, before any response
        self.fail_after_chunks: TzurotError | None = None
        self.gate: asyncio.Event | None = None
        self.cancelled = asyncio.Event()
        self.validated: list[tuple[str, str]] = []
        self.rejected_keys: set[str] = set()
        self.restricted_keys: dict[str, list[str]] = {}
        """Keys (or user ids) the provider authenticates but restricts: what each lacks."""
        self.report: inf.PromptReport | None = None
        self.reasoning = ""

    async def GenerateReply(
        self, request: inf.GenerateReplyRequest, context: Context
    ) -> AsyncIterator[inf.GenerateReplyResponse]:
        self.requests.append(request)
        if self.fail_before_reply:
            raise self.fail_before_reply.pop(0)
        try:
            for index, text in enumerate(self.chunks):
                if index and self.gate is not None:
                    await self.gate.wait()
                yield inf.GenerateReplyResponse(chunk=gw.TextChunk(text=text))
            if self.fail_after_chunks is not None:
                raise self.fail_after_chunks
            yield inf.GenerateReplyResponse(
                finished=inf.ReplyFinished(
                    content="".join(self.chunks),
                    usage=common.Usage(
                        provider=request.config.config.provider,
                        model=request.config.config.model,
                        input_tokens=42,
                        output_tokens=7,
                    ),
                    finish_reason="stop",
                    report=self.report,
                    reasoning=self.reasoning,
                )
            )
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def ValidateKey(
        self, request: inf.ValidateKeyRequest, context: Context
    ) -> inf.ValidateKeyResponse:
        self.validated.append((request.provider, request.api_key or request.user_id))
        if request.api_key in self.rejected_keys or request.user_id in self.rejected_keys:
            raise FailedPrecondition(
                f"the key was rejected by {request.provider}", reason="INVALID_API_KEY"
            )
        lacks = self.restricted_keys.get(request.api_key or request.user_id)
        if lacks is not None:
            return inf.ValidateKeyResponse(
                restriction=common.KeyRestriction(missing_permissions=lacks)
            )
        return inf.ValidateKeyResponse(model_count=3)


class MemoryServicer(mem_grpc.MemoryServiceServicer):
    def __init__(self) -> None:
        self.stored: list[mem.StoreExchangeRequest] = []
        self.memories: list[common.Memory] = []

    async def StoreExchange(
        self, request: mem.StoreExchangeRequest, context: Context
    ) -> mem.StoreExchangeResponse:
        created = all(r.job_id != request.job_id for r in self.stored)
        if created:
            self.stored.append(request)
        return mem.StoreExchangeResponse(turns=list(request.turns), created=created)

    def _take(self, keep: Callable[[mem.StoreExchangeRequest], bool]) -> list[common.Turn]:
        gone = [r for r in self.stored if not keep(r)]
        self.stored = [r for r in self.stored if keep(r)]
        return [turn for r in gone for turn in r.turns]

    async def ClearTurns(
        self, request: mem.ClearTurnsRequest, context: Context
    ) -> mem.ClearTurnsResponse:
        gone = self._take(
            lambda r: (
                (r.channel_id, r.personality_id) != (request.channel_id, request.personality_id)
                or request.user_id not in ("", r.user_id)
            )
        )
        return mem.ClearTurnsResponse(deleted=len(gone))

    async def RemoveLastExchange(
        self, request: mem.RemoveLastExchangeRequest, context: Context
    ) -> mem.RemoveLastExchangeResponse:
        mine = [
            r
            for r in self.stored
            if (r.channel_id, r.personality_id, r.user_id)
            == (request.channel_id, request.personality_id, request.user_id)
        ]
        if not mine:
            return mem.RemoveLastExchangeResponse()
        return mem.RemoveLastExchangeResponse(removed=self._take(lambda r: r is not mine[-1]))

    async def ForgetUser(
        self, request: mem.ForgetUserRequest, context: Context
    ) -> mem.ForgetUserResponse:
        gone = self._take(lambda r: r.user_id != request.user_id)
        memories = [m for m in self.memories if m.user_id == request.user_id]
        self.memories = [m for m in self.memories if m.user_id != request.user_id]
        return mem.ForgetUserResponse(deleted_turns=len(gone), deleted_memories=len(memories))

    async def ForgetPersonality(
        self, request: mem.ForgetPersonalityRequest, context: Context
    ) -> mem.ForgetPersonalityResponse:
        gone = self._take(lambda r: r.personality_id != request.personality_id)
        memories = [m for m in self.memories if m.personality_id == request.personality_id]
        self.memories = [m for m in self.memories if m.personality_id != request.personality_id]
        return mem.ForgetPersonalityResponse(
            deleted_turns=len(gone), deleted_memories=len(memories)
        )

    async def ExportUser(
        self, request: mem.ExportUserRequest, context: Context
    ) -> mem.ExportUserResponse:
        created = Timestamp()
        created.FromDatetime(datetime(2025, 1, 2, tzinfo=UTC))
        turns = [
            common.Turn(
                id=f"{r.job_id}-{n}",
                role=t.role,
                author_id=t.author_id,
                author_name=t.author_name,
                content=t.content,
                message_ids=list(t.message_ids),
                created_at=created,
                personality_id=r.personality_id,
                channel_id=r.channel_id,
                job_id=r.job_id,
            )
            for r in self.stored
            if r.user_id == request.user_id
            for n, t in enumerate(r.turns)
        ]
        memories = [m for m in self.memories if m.user_id == request.user_id]
        return mem.ExportUserResponse(turns=turns, memories=memories)


class KeyVaultServicer(kv_grpc.KeyVaultServiceServicer):
    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], str] = {}

    def _record(self, user_id: str, provider: str) -> kv.KeyRecord:
        created = Timestamp()
        created.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC))
        return kv.KeyRecord(
            user_id=user_id,
            provider=provider,
            master_key_version=1,
            created_at=created,
            hint=self.keys[user_id, provider][-4:],
        )

    async def PutKey(self, request: kv.PutKeyRequest, context: Context) -> kv.PutKeyResponse:
        self.keys[request.user_id, request.provider] = request.api_key
        return kv.PutKeyResponse(record=self._record(request.user_id, request.provider))

    async def ListKeys(self, request: kv.ListKeysRequest, context: Context) -> kv.ListKeysResponse:
        return kv.ListKeysResponse(
            records=[self._record(u, p) for u, p in sorted(self.keys) if u == request.user_id]
        )

    async def DeleteKey(
        self, request: kv.DeleteKeyRequest, context: Context
    ) -> kv.DeleteKeyResponse:
        found = self.keys.pop((request.user_id, request.provider), None)
        return kv.DeleteKeyResponse(deleted=found is not None)


@dataclass
class Mesh:
    gateway: GatewayApp
    inference: InferenceServicer
    memory: MemoryServicer
    keyvault: KeyVaultServicer
    servers: list[RunningServer] = field(default_factory=list)

    async def stop(self) -> None:
        await self.gateway.stop()
        for server in self.servers:
            await server.stop(0)


def gateway_settings(
    pki: Path, database_url: str, ports: tuple[int, int, int] = (1, 1, 1)
) -> GatewaySettings:
    inference, memory, keyvault = ports
    return GatewaySettings(
        listen="127.0.0.1:0",
        tls_dir=pki / "gateway",
        database_url=SecretStr(database_url),
        inference_addr=f"127.0.0.1:{inference}",
        memory_addr=f"127.0.0.1:{memory}",
        keyvault_addr=f"127.0.0.1:{keyvault}",
        default_deadline_seconds=10.0,
        grace_seconds=0.5,
    )


@pytest.fixture
async def mesh(pki: Path, core_url: str) -> AsyncIterator[Mesh]:
    # Only the RPCs gateway calls are overridden; the rest stay abstract (UNIMPLEMENTED).
    inference = InferenceServicer()  # type: ignore[abstract]
    memory = MemoryServicer()  # type: ignore[abstract]
    keyvault = KeyVaultServicer()  # type: ignore[abstract]
    servers, ports = await serve_backends(pki, inference, memory, keyvault)
    try:
        app = await start_gateway(gateway_settings(pki, core_url, ports))
    except BaseException:
        for server in servers:
            await server.stop(0)
        raise
    running = Mesh(app, inference, memory, keyvault, servers)
    try:
        yield running
    finally:
        await running.stop()


Connect = Callable[[str], "Stub"]


@pytest.fixture
async def connect(pki: Path, mesh: Mesh) -> AsyncIterator[Connect]:
    """A gateway stub authenticated as the given identity."""
    async with channels_to("gateway", pki, default_timeout=10.0) as open_channel:
        yield lambda identity: gw_grpc.GatewayServiceStub(open_channel(mesh.gateway.port, identity))


async def import_seed(stub: Stub, name: str) -> gw.ImportPersonalityResponse:
    reply: gw.ImportPersonalityResponse = await stub.ImportPersonality(
        gw.ImportPersonalityRequest(
            format=gw.IMPORT_FORMAT_SEED_YAML, document=(SEEDS / f"{name}.yaml").read_bytes()
        )
    )
    return reply


def generate_request(
    key: str = "msg-1", personality: str = "lilith", content: str = "Hello Lilith"
) -> gw.GenerateRequest:
    return gw.GenerateRequest(
        actor=ACTOR,
        location=WHERE,
        personality=personality,
        content=content,
        idempotency_key=key,
        message_ids=[key],
    )


async def drain(
    call: AsyncIterable[gw.GenerateResponse], into: list[gw.GenerateResponse] | None = None
) -> list[gw.GenerateResponse]:
    """Reads a Generate stream to its end; `into` keeps the replies before an error."""
    replies = [] if into is None else into
    async for reply in call:
        replies.append(reply)
    return replies


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def wait_for_status(stub: Stub, job_id: str, status: int) -> gw.Job:
    async def reached() -> gw.Job | None:
        reply = await stub.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))
        return reply.job if reply.job.status == status else None

    job = await until(reached, f"job {job_id} reached {status}", within=30, every=0.05)
    assert job is not None  # until returns a truthy value
    return job


# ---- tests ----


async def test_import_personality_as_cli(connect: Connect) -> None:
    cli = connect("cli")
    first = await import_seed(cli, "lilith")
    assert first.created is True
    assert (first.personality.slug, first.personality.display_name) == ("lilith", "Lilith")
    assert list(first.personality.aliases) == ["lil", "the night queen"]
    assert first.personality.default_llm_config_id
    assert first.personality.HasField("created_at")
    again = await import_seed(cli, "lilith")
    assert (again.created, again.personality.id) == (False, first.personality.id)

    bot = connect("bot")
    got = await bot.GetPersonality(gw.GetPersonalityRequest(personality="The Night Queen"))
    assert got.personality.id == first.personality.id
    await import_seed(cli, "sage")
    listed = await bot.ListPersonalities(gw.ListPersonalitiesRequest(actor=ACTOR))
    assert [p.slug for p in listed.personalities] == ["lilith", "sage"]


@pytest.mark.parametrize(
    ("document", "field"),
    [(b"name: [unclosed", "document"), (b"name: X\nbirthday: 31-10", "birthday")],
)
async def test_bad_seed_is_invalid_argument_naming_the_field(
    connect: Connect, document: bytes, field: str
) -> None:
    error = await rpc_error(
        connect("cli").ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=document)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = from_rpc_error(error)
    assert isinstance(decoded, InvalidArgument)
    assert decoded.field == field


async def test_generate_as_bot_streams_then_delivery_stores_the_exchange(
    connect: Connect, mesh: Mesh
) -> None:
    lilith = (await import_seed(connect("cli"), "lilith")).personality
    bot = connect("bot")
    replies = [r async for r in bot.Generate(generate_request())]
    assert [r.WhichOneof("event") for r in replies] == [
        "accepted",
        "chunk",
        "chunk",
        "chunk",
        "finished",
    ]
    accepted, finished = replies[0].accepted, replies[-1].finished
    assert (accepted.personality.id, accepted.personality.avatar_url) == (
        lilith.id,
        lilith.avatar_url,
    )
    assert accepted.replayed is False
    assert [r.chunk.text for r in replies[1:-1]] == ["Hello", ", ", "mortal."]
    assert (finished.job_id, finished.content, finished.finish_reason) == (
        accepted.job_id,
        "Hello, mortal.",
        "stop",
    )
    assert (finished.usage.model, finished.usage.input_tokens) == (
        "anthropic/claude-sonnet-4.5",
        42,
    )

    [request] = mesh.inference.requests
    assert (request.job_id, request.content) == (accepted.job_id, "Hello Lilith")
    assert request.personality.system_prompt == lilith.system_prompt
    assert request.config.source == common.CONFIG_SOURCE_PERSONALITY
    assert request.location.channel_id == "channel-1"
    assert request.actor.user_id == ACTOR.user_id

    status = await bot.GetJobStatus(gw.GetJobStatusRequest(idempotency_key="msg-1"))
    assert status.job.status == common.JOB_STATUS_STREAMED
    assert status.job.usage.output_tokens == 7

    confirmed = await bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=accepted.job_id, message_ids=["answer-1"])
    )
    assert confirmed.job.status == common.JOB_STATUS_DELIVERED
    assert confirmed.job.HasField("delivered_at")
    [stored] = mesh.memory.stored
    assert (stored.job_id, stored.channel_id, stored.personality_id) == (
        accepted.job_id,
        "channel-1",
        lilith.id,
    )
    assert [(t.role, t.content, list(t.message_ids)) for t in stored.turns] == [
        (common.ROLE_USER, "Hello Lilith", ["msg-1"]),
        (common.ROLE_ASSISTANT, "Hello, mortal.", ["answer-1"]),
    ]
    status = await bot.GetJobStatus(gw.GetJobStatusRequest(job_id=accepted.job_id))
    assert status.job.status == common.JOB_STATUS_DELIVERED

    replayed = [r async for r in bot.Generate(generate_request())]
    assert replayed[0].accepted.replayed is True
    assert replayed[-1].finished.content == "Hello, mortal."
    assert len(mesh.inference.requests) == 1


@pytest.mark.parametrize(
    "identity", [i for i in SERVICE_IDENTITIES if i not in ("bot", "cli", "edge", "gateway")]
)
async def test_only_bot_cli_edge_and_the_gateway_pod_itself_may_call(
    connect: Connect, identity: str
) -> None:
    stub = connect(identity)
    error = await rpc_error(stub.GetJobStatus(gw.GetJobStatusRequest(idempotency_key="x")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(stub.Generate(generate_request()))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_personality_is_not_found(connect: Connect, mesh: Mesh) -> None:
    await import_seed(connect("cli"), "lilith")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(connect("bot").Generate(generate_request(personality="Morgana")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Morgana" in (caught.value.details() or "")
    decoded = from_rpc_error(caught.value)
    assert isinstance(decoded, NotFound)
    assert decoded.reason == "PERSONALITY_NOT_FOUND"
    assert mesh.inference.requests == []


async def test_a_message_cannot_pass_for_a_scheduled_turn(connect: Connect, mesh: Mesh) -> None:
    """`turn:` keys are the gateway's own scheduled turns (stored as the channel's, with no
    user and no question): a message sent under one would escape its author's privacy tools."""
    await import_seed(connect("cli"), "lilith")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(connect("bot").Generate(generate_request(key="turn:forged")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert getattr(from_rpc_error(caught.value), "field", None) == "idempotency_key"
    assert mesh.inference.requests == []


async def test_job_status_errors(connect: Connect) -> None:
    bot = connect("bot")
    missing = await rpc_error(bot.GetJobStatus(gw.GetJobStatusRequest(idempotency_key="nope")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    bad = await rpc_error(bot.GetJobStatus(gw.GetJobStatusRequest(job_id="not-a-uuid")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    empty = await rpc_error(bot.GetJobStatus(gw.GetJobStatusRequest()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_inference_unavailable_before_a_reply_is_not_sent_again_by_the_channel(
    connect: Connect, mesh: Mesh
) -> None:
    """Inference may have paid before it failed (transcripts, an empty answer): the gateway's
    channel does not re-send the call. The job fails retryably; the message sent again is
    answered."""
    await import_seed(connect("cli"), "lilith")
    mesh.inference.fail_before_reply = [Unavailable("the answer was empty", reason="EMPTY_ANSWER")]
    bot = connect("bot")
    failed = await rpc_error(drain(bot.Generate(generate_request())))
    assert (failed.code(), from_rpc_error(failed).reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "EMPTY_ANSWER",
    )
    assert len(mesh.inference.requests) == 1
    replies = [r async for r in bot.Generate(generate_request())]
    assert replies[-1].finished.content == "Hello, mortal."
    assert len(mesh.inference.requests) == 2


async def test_inference_failure_mid_stream_fails_the_job(connect: Connect, mesh: Mesh) -> None:
    await import_seed(connect("cli"), "lilith")
    mesh.inference.fail_after_chunks = Unavailable(
        "openrouter is unreachable", reason="PROVIDER_UNAVAILABLE"
    )
    bot = connect("bot")
    received: list[gw.GenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(bot.Generate(generate_request()), into=received)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert from_rpc_error(caught.value).reason == "PROVIDER_UNAVAILABLE"
    assert len(received) == 4  # accepted and three chunks, never retried after a reply
    assert len(mesh.inference.requests) == 1
    job = (await bot.GetJobStatus(gw.GetJobStatusRequest(idempotency_key="msg-1"))).job
    assert job.status == common.JOB_STATUS_FAILED
    assert (job.error.code, job.error.reason) == ("UNAVAILABLE", "PROVIDER_UNAVAILABLE")


async def test_client_cancelling_mid_stream_cancels_inference_and_fails_the_job(
    connect: Connect, mesh: Mesh
) -> None:
    await import_seed(connect("cli"), "lilith")
    mesh.inference.gate = asyncio.Event()
    bot = connect("bot")
    call = bot.Generate(generate_request())
    accepted, chunk = await call.read(), await call.read()
    assert isinstance(accepted, gw.GenerateResponse)
    assert isinstance(chunk, gw.GenerateResponse)
    assert chunk.chunk.text == "Hello"
    call.cancel()

    await asyncio.wait_for(mesh.inference.cancelled.wait(), 30)
    job = await wait_for_status(bot, accepted.accepted.job_id, common.JOB_STATUS_FAILED)
    assert (job.error.code, job.error.reason) == ("CANCELLED", "CLIENT_CANCELLED")
    error = await rpc_error(
        bot.ConfirmDelivery(gw.ConfirmDeliveryRequest(job_id=job.id, message_ids=["a"]))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert mesh.memory.stored == []


async def test_wallet_over_grpc(connect: Connect, mesh: Mesh) -> None:
    bot = connect("bot")
    mesh.inference.rejected_keys = {"rejected-key-0000"}
    set_reply = await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ACTOR, provider="openrouter", api_key=PLANTED)
    )
    assert (set_reply.key.provider, set_reply.key.hint, set_reply.key.active) == (
        "openrouter",
        PLANTED[-4:],
        True,
    )
    assert PLANTED not in str(set_reply)
    assert mesh.inference.validated == [("openrouter", PLANTED)]
    assert list(mesh.keyvault.keys.values()) == [PLANTED]

    rejected = await rpc_error(
        bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=ACTOR, provider="openai", api_key="rejected-key-0000")
        )
    )
    assert rejected.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rejected.details() == "the key was rejected by openai"
    assert from_rpc_error(rejected).reason == "INVALID_API_KEY"
    assert len(mesh.keyvault.keys) == 1

    tested = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=ACTOR, provider="openrouter"))
    assert (tested.valid, tested.detail) == (True, "the key works (3 models visible)")
    (user_id,) = {user for user, _ in mesh.keyvault.keys}
    assert mesh.inference.validated[-1] == ("openrouter", user_id)  # the id, never the key
    mesh.inference.rejected_keys.add(user_id)
    tested = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=ACTOR, provider="openrouter"))
    assert (tested.valid, tested.detail) == (False, "the key was rejected by openrouter")
    untested = await rpc_error(
        bot.TestWalletKey(gw.TestWalletKeyRequest(actor=ACTOR, provider="openai"))
    )
    assert untested.code() == grpc.StatusCode.NOT_FOUND

    listed = await bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=ACTOR))
    assert [k.provider for k in listed.keys] == ["openrouter"]
    assert listed.keys[0].HasField("created_at")
    await bot.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=ACTOR, provider="openrouter"))
    assert mesh.keyvault.keys == {}
    missing = await rpc_error(
        bot.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=ACTOR, provider="openrouter"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_a_restricted_key_is_stored_and_its_restriction_told_over_grpc(
    connect: Connect, mesh: Mesh
) -> None:
    """Inference found the key authenticated but restricted (an ElevenLabs key without
    `voices_read`): SetWalletKey stores it and answers what it lacks, as TestWalletKey does."""
    bot = connect("bot")
    mesh.inference.restricted_keys = {PLANTED: ["voices_read"]}
    set_reply = await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ACTOR, provider="elevenlabs", api_key=PLANTED)
    )
    assert (set_reply.key.provider, set_reply.key.hint) == ("elevenlabs", PLANTED[-4:])
    assert list(set_reply.restriction.missing_permissions) == ["voices_read"]
    assert list(mesh.keyvault.keys.values()) == [PLANTED]
    assert PLANTED not in str(set_reply)
    (user_id,) = {user for user, _ in mesh.keyvault.keys}
    mesh.inference.restricted_keys[user_id] = ["voices_read"]
    tested = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=ACTOR, provider="elevenlabs"))
    assert tested.valid
    assert list(tested.restriction.missing_permissions) == ["voices_read"]
    plain = await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ACTOR, provider="openrouter", api_key=PLANTED + "2")
    )
    assert not plain.HasField("restriction")


async def test_memory_rpcs_not_built_yet_pass_unimplemented_through(connect: Connect) -> None:
    bot = connect("bot")
    await import_seed(connect("cli"), "lilith")
    # This test's memory servicer, like memory before long-term memory, lacks QueryMemories.
    error = await rpc_error(
        bot.SearchMemories(
            gw.SearchMemoriesRequest(actor=ACTOR, personality="lilith", query="cats")
        )
    )
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_start_refuses_an_unmigrated_database(
    pki: Path, fresh_database: DatabaseFactory
) -> None:
    with pytest.raises(StartupError, match="no schema 'core'"):
        await start_gateway(gateway_settings(pki, fresh_database()))


async def test_alias_clash_is_already_exists(connect: Connect) -> None:
    cli = connect("cli")
    await import_seed(cli, "lilith")
    error = await rpc_error(
        cli.ImportPersonality(
            gw.ImportPersonalityRequest(
                format=gw.IMPORT_FORMAT_SEED_YAML, document=b"name: Lilim\naliases: [LIL]\n"
            )
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "lilith" in (error.details() or "")


@pytest.mark.usefixtures("debug_logs")
async def test_logs_of_a_grpc_run_hold_no_key(
    connect: Connect, mesh: Mesh, capfd: pytest.CaptureFixture[str]
) -> None:
    await import_seed(connect("cli"), "lilith")
    bot = connect("bot")
    mesh.inference.rejected_keys = {PLANTED + "x"}
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ACTOR, provider="openrouter", api_key=PLANTED)
    )
    await bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=ACTOR))
    for request in (
        gw.SetWalletKeyRequest(actor=ACTOR, provider="openai", api_key=PLANTED + "x"),
        gw.SetWalletKeyRequest(actor=ACTOR, provider="", api_key=PLANTED),
        gw.SetWalletKeyRequest(actor=ACTOR, provider="openai", api_key=PLANTED * 200),
        gw.SetWalletKeyRequest(
            actor=ACTOR, provider="openai", api_key=PLANTED, skip_validation=True
        ),
    ):
        error = await rpc_error(bot.SetWalletKey(request))
        assert PLANTED not in (error.details() or "")
        assert PLANTED not in str(error.trailing_metadata())
    await drain(bot.Generate(generate_request()))
    await bot.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=ACTOR, provider="openrouter"))
    await mesh.stop()

    out, err = capfd.readouterr()
    logs = out + err
    assert "rpc.served" in logs
    assert "job.streamed" in logs
    assert PLANTED not in logs
    assert PLANTED[:12] not in logs
    assert PLANTED[-12:] not in logs


async def test_job_status_shows_what_informed_the_answer_to_its_user_only(
    connect: Connect, mesh: Mesh
) -> None:
    await import_seed(connect("cli"), "lilith")
    bot = connect("bot")
    mesh.inference.report = inf.PromptReport(
        prompt_tokens_estimate=640,
        history_turns=6,
        memory_ids=["mem-1"],
        referenced_message_ids=["ref-1", "ref-2"],
        key_source="user",
    )
    mesh.inference.reasoning = "she wants a short answer"
    keep = gw.SetSettingRequest(actor=ACTOR, scope=common.CONFIG_SOURCE_USER, key="keep_reasoning")
    keep.value.bool_value = True  # only the user's own choice keeps it for Inspect
    await bot.SetSetting(keep)
    replies = [r async for r in bot.Generate(generate_request())]
    job_id = replies[0].accepted.job_id

    own = await bot.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id, actor=ACTOR))
    assert own.job.inspection == gw.JobInspection(
        memory_ids=["mem-1"],
        referenced_message_ids=["ref-1", "ref-2"],
        history_turns=6,
        key_source="user",
        prompt_tokens_estimate=640,
        reasoning="she wants a short answer",
    )
    stranger = common.Actor(user_id="100000000000000009", display_name="Mallory")
    other = await bot.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id, actor=stranger))
    anonymous = await bot.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))
    assert other.job.status == common.JOB_STATUS_STREAMED
    assert not other.job.HasField("inspection")
    assert not anonymous.job.HasField("inspection")
