"""MemoryService over real mTLS gRPC on loopback, backed by real Postgres."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.memory.app import AUTHORIZATION, SERVICE_NAME
from tzurot.runtime.errors import InvalidArgument, NotFound, from_rpc_error
from tzurot.runtime.tls import SERVICE_IDENTITIES
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

from .conftest import Connect

if TYPE_CHECKING:
    from .conftest import Stub

pytestmark = pytest.mark.component


CHANNEL = "chan-1"
PERSONA = "lilith"
USER = "6f1c9c1e-7d3a-4d2b-9a43-0c5f3b1e2a10"
BOB = "0b0b0b0b-7d3a-4d2b-9a43-0c5f3b1e2a10"


def exchange(job_id: str, n: int = 0, user_id: str = USER) -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=job_id,
        channel_id=CHANNEL,
        personality_id=PERSONA,
        user_id=user_id,
        turns=[
            common.Turn(
                role=common.ROLE_USER,
                author_id="111",
                author_name="Alice",
                content=f"q{n}",
                message_ids=[f"u{n}"],
                attachments=[
                    common.Attachment(
                        url="https://cdn.example/cat.png",
                        content_type="image/png",
                        filename="cat.png",
                        size_bytes=10,
                    )
                ],
            ),
            common.Turn(
                role=common.ROLE_ASSISTANT,
                author_name="Lilith",
                content=f"a{n}",
                message_ids=[f"a{n}-1", f"a{n}-2"],
            ),
        ],
    )


async def test_history_round_trip(connect: Connect) -> None:
    gateway, inference = connect("gateway"), connect("inference")
    stored = await gateway.StoreExchange(exchange("job-1", 1))
    assert stored.created is True
    assert [t.role for t in stored.turns] == [common.ROLE_USER, common.ROLE_ASSISTANT]
    user_turn = stored.turns[0]
    assert (user_turn.job_id, user_turn.channel_id, user_turn.personality_id) == (
        "job-1",
        CHANNEL,
        PERSONA,
    )
    assert user_turn.id
    assert user_turn.HasField("created_at")
    assert user_turn.attachments[0].filename == "cat.png"

    again = await gateway.StoreExchange(exchange("job-1", 7))
    assert again.created is False
    assert list(again.turns) == list(stored.turns)
    await gateway.StoreExchange(exchange("job-2", 2))

    reply = await inference.GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA)
    )
    assert [t.content for t in reply.turns] == ["q1", "a1", "q2", "a2"]
    newest = await inference.GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA, limit=2)
    )
    assert [t.content for t in newest.turns] == ["q2", "a2"]
    older = await gateway.GetHistory(
        mem.GetHistoryRequest(
            channel_id=CHANNEL, personality_id=PERSONA, before=newest.turns[0].created_at
        )
    )
    assert [t.content for t in older.turns] == ["q1", "a1"]

    found = await inference.FindTurnsByMessageId(
        mem.FindTurnsByMessageIdRequest(message_ids=["a1-2"])
    )
    assert [t.content for t in found.turns] == ["a1"]

    edited = await gateway.EditTurn(mem.EditTurnRequest(message_id="u2", content="q2 edited"))
    assert edited.turn.content == "q2 edited"
    with pytest.raises(grpc.aio.AioRpcError) as other_job:  # u2 is no turn of job-1's
        await gateway.EditTurn(mem.EditTurnRequest(message_id="u2", content="x", job_id="job-1"))
    assert other_job.value.code() == grpc.StatusCode.NOT_FOUND

    removed = await gateway.RemoveLastExchange(
        mem.RemoveLastExchangeRequest(channel_id=CHANNEL, personality_id=PERSONA, user_id=USER)
    )
    assert [t.content for t in removed.removed] == ["q2 edited", "a2"]

    deleted = await gateway.DeleteTurns(mem.DeleteTurnsRequest(message_ids=["a1-1"]))
    assert deleted.deleted == 1
    await gateway.StoreExchange(exchange("job-3", 3))
    await gateway.StoreExchange(exchange("job-bob", 8, user_id=BOB))
    mine = await gateway.ClearTurns(
        mem.ClearTurnsRequest(channel_id=CHANNEL, personality_id=PERSONA, user_id=USER)
    )
    assert mine.deleted == 3  # only that user's exchanges
    left = await gateway.GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA)
    )
    assert [t.content for t in left.turns] == ["q8", "a8"]
    cleared = await gateway.ClearTurns(
        mem.ClearTurnsRequest(channel_id=CHANNEL, personality_id=PERSONA)
    )
    assert cleared.deleted == 2  # everyone's

    await gateway.StoreExchange(exchange("job-4", 4))
    forgotten = await gateway.ForgetUser(mem.ForgetUserRequest(user_id=USER))
    assert (forgotten.deleted_turns, forgotten.deleted_memories) == (2, 0)


async def test_before_in_the_future_sees_everything(connect: Connect) -> None:
    gateway = connect("gateway")
    await gateway.StoreExchange(exchange("job-1"))
    future = Timestamp()
    future.FromDatetime(datetime(2999, 1, 1, tzinfo=UTC))
    reply = await gateway.GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA, before=future)
    )
    assert len(reply.turns) == 2


async def test_errors_travel_as_rich_statuses(connect: Connect) -> None:
    gateway = connect("gateway")
    bad = exchange("job-1")
    bad.turns[1].role = common.ROLE_SYSTEM
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.StoreExchange(bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = from_rpc_error(caught.value)
    assert isinstance(error, InvalidArgument)
    assert error.field == "turns[1].role"

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await gateway.EditTurn(mem.EditTurnRequest(message_id="nope", content="x"))
    not_found = from_rpc_error(missing.value)
    assert isinstance(not_found, NotFound)
    assert not_found.reason == "TURN_NOT_FOUND"

    with pytest.raises(grpc.aio.AioRpcError) as limit:
        await gateway.GetHistory(
            mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA, limit=501)
        )
    assert limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_store_exchange_as_inference_is_refused(connect: Connect) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await connect("inference").StoreExchange(exchange("job-1"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    history = await connect("gateway").GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA)
    )
    assert list(history.turns) == []


async def test_export_user_returns_only_that_users_turns_and_memories(connect: Connect) -> None:
    gateway = connect("gateway")
    other = "0b7e2f4a-1111-4c2d-8e3f-5a6b7c8d9e0f"
    await gateway.StoreExchange(exchange("job-1", 1))
    await gateway.StoreExchange(exchange("job-other", 9, user_id=other))
    await gateway.StoreExchange(exchange("job-2", 2))
    await gateway.AddMemory(
        mem.AddMemoryRequest(
            memory=common.Memory(
                personality_id=PERSONA, user_id=USER, text="alice keeps a cat named pixel"
            )
        )
    )
    await gateway.AddMemory(
        mem.AddMemoryRequest(
            memory=common.Memory(
                personality_id=PERSONA, user_id=other, text="someone else likes trains"
            )
        )
    )
    await gateway.AddMemory(
        mem.AddMemoryRequest(
            memory=common.Memory(personality_id=PERSONA, text="lilith's shared lore of the realm")
        )
    )

    fresh = Timestamp()
    fresh.FromDatetime(datetime(2025, 6, 1, tzinfo=UTC))
    for user_id in (USER, other):
        await gateway.SetMemoryMode(
            mem.SetMemoryModeRequest(
                personality_id=PERSONA, user_id=user_id, mode=mem.MemoryMode(fresh_since=fresh)
            )
        )

    exported = await gateway.ExportUser(mem.ExportUserRequest(user_id=USER))

    assert [(m.personality_id, m.mode) for m in exported.modes] == [
        (PERSONA, mem.MemoryMode(fresh_since=fresh))
    ]
    assert [t.content for t in exported.turns] == ["q1", "a1", "q2", "a2"]
    first = exported.turns[0]
    assert (first.channel_id, first.personality_id, first.job_id) == (CHANNEL, PERSONA, "job-1")
    assert (first.role, first.author_name, list(first.message_ids)) == (
        common.ROLE_USER,
        "Alice",
        ["u1"],
    )
    assert first.HasField("created_at")
    assert [(m.user_id, m.text) for m in exported.memories] == [
        (USER, "alice keeps a cat named pixel")
    ]
    memory = exported.memories[0]
    assert memory.sector != common.MEMORY_SECTOR_UNSPECIFIED
    assert memory.salience > 0
    assert memory.HasField("created_at")
    assert memory.HasField("last_accessed_at")

    nobody = await gateway.ExportUser(mem.ExportUserRequest(user_id="nobody"))
    assert (list(nobody.turns), list(nobody.memories), list(nobody.modes)) == ([], [], [])


async def test_export_user_validation_and_authorization(connect: Connect) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await connect("gateway").ExportUser(mem.ExportUserRequest())
    error = from_rpc_error(missing.value)
    assert isinstance(error, InvalidArgument)
    assert error.field == "user_id"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await connect("inference").ExportUser(mem.ExportUserRequest(user_id=USER))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


GATEWAY_ONLY = {
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
}
INFERENCE_ONLY = {"GetReplyContext"}


def calls() -> dict[str, Callable[[Stub], Awaitable[Any]]]:
    return {
        "StoreExchange": lambda s: s.StoreExchange(exchange("job-authz")),
        "GetHistory": lambda s: s.GetHistory(
            mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA)
        ),
        "FindTurnsByMessageId": lambda s: s.FindTurnsByMessageId(
            mem.FindTurnsByMessageIdRequest(message_ids=["u0"])
        ),
        "EditTurn": lambda s: s.EditTurn(mem.EditTurnRequest(message_id="u0", content="edited")),
        "DeleteTurns": lambda s: s.DeleteTurns(mem.DeleteTurnsRequest(message_ids=["none"])),
        "ClearTurns": lambda s: s.ClearTurns(
            mem.ClearTurnsRequest(channel_id="elsewhere", personality_id=PERSONA)
        ),
        "RemoveLastExchange": lambda s: s.RemoveLastExchange(
            mem.RemoveLastExchangeRequest(
                channel_id=CHANNEL, personality_id=PERSONA, user_id="nobody"
            )
        ),
        "PruneHistory": lambda s: s.PruneHistory(
            mem.PruneHistoryRequest(older_than=Timestamp(seconds=1))
        ),
        # Their own ids: a forgotten id stores nothing more (SetMemoryMode "nobody" below).
        "ForgetUser": lambda s: s.ForgetUser(mem.ForgetUserRequest(user_id="forgotten")),
        "ForgetPersonality": lambda s: s.ForgetPersonality(
            mem.ForgetPersonalityRequest(personality_id="forgotten")
        ),
        "ExportUser": lambda s: s.ExportUser(mem.ExportUserRequest(user_id="nobody")),
        "QueryMemories": lambda s: s.QueryMemories(
            mem.QueryMemoriesRequest(personality_id=PERSONA, user_id=USER, query="cats")
        ),
        "GetReplyContext": lambda s: s.GetReplyContext(
            mem.GetReplyContextRequest(
                channel_id=CHANNEL, personality_id=PERSONA, user_id=USER, query="cats"
            )
        ),
        "AddMemory": lambda s: s.AddMemory(
            mem.AddMemoryRequest(memory=common.Memory(personality_id="authz", text="a fact"))
        ),
        "DropWeakMemories": lambda s: s.DropWeakMemories(
            mem.DropWeakMemoriesRequest(personality_id="authz", threshold=0.01)
        ),
        "CountMemories": lambda s: s.CountMemories(
            mem.CountMemoriesRequest(personality_id=PERSONA, user_id=USER)
        ),
        "Consolidate": lambda s: s.Consolidate(mem.ConsolidateRequest()),
        "SetMemoryMode": lambda s: s.SetMemoryMode(
            mem.SetMemoryModeRequest(personality_id=PERSONA, user_id="nobody")
        ),
        "GetMemoryMode": lambda s: s.GetMemoryMode(
            mem.GetMemoryModeRequest(personality_id=PERSONA, user_id="nobody")
        ),
        "ListMemories": lambda s: s.ListMemories(
            mem.ListMemoriesRequest(personality_id=PERSONA, user_id="nobody")
        ),
        "DeleteMemory": lambda s: s.DeleteMemory(
            mem.DeleteMemoryRequest(
                personality_id=PERSONA,
                user_id="nobody",
                memory_id="00000000-0000-4000-8000-000000000000",
            )
        ),
        "ClaimFactJobs": lambda s: s.ClaimFactJobs(mem.ClaimFactJobsRequest(limit=1)),
        "StoreFacts": lambda s: s.StoreFacts(
            mem.StoreFactsRequest(personality_id=PERSONA, user_id="nobody", job_ids=["job-authz"])
        ),
    }


def expected_code(method: str, identity: str) -> grpc.StatusCode:
    allowed = {"gateway"} if method in GATEWAY_ONLY else {"gateway", "inference"}
    if method in INFERENCE_ONLY:
        allowed = {"inference"}
    if method == "Consolidate":
        allowed.add("memory")  # the consolidation CronJob runs as memory itself
    if method == "PruneHistory":
        allowed = {"gateway", "memory"}  # retention: a write, also run by that job
    if identity not in allowed:
        return grpc.StatusCode.PERMISSION_DENIED
    return grpc.StatusCode.OK


async def test_authorization_matrix(connect: Connect) -> None:
    service = mem.DESCRIPTOR.services_by_name["MemoryService"]
    methods = {method.name for method in service.methods}
    assert methods == set(calls())
    assert set(AUTHORIZATION) == {f"/{SERVICE_NAME}/{name}" for name in methods}
    stubs = {identity: connect(identity) for identity in SERVICE_IDENTITIES}
    results: dict[tuple[str, str], grpc.StatusCode] = {}
    for method, call in calls().items():
        for identity, stub in stubs.items():
            try:
                await call(stub)
                results[method, identity] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                results[method, identity] = exc.code()
    expected = {
        (method, identity): expected_code(method, identity)
        for method in methods
        for identity in SERVICE_IDENTITIES
    }
    assert results == expected


async def test_add_memory_with_id_and_time_is_an_idempotent_import(connect: Connect) -> None:
    gateway = connect("gateway")
    when = Timestamp()
    when.FromDatetime(datetime(2023, 7, 22, 4, 15, tzinfo=UTC))
    given = common.Memory(
        id="7a1c2e4f-0000-4000-8000-000000000001",
        personality_id=PERSONA,
        user_id=USER,
        text="alice sailed the kestrel through a storm",
        created_at=when,
    )
    first = await gateway.AddMemory(mem.AddMemoryRequest(memory=given))
    assert (first.existed, first.merged) == (False, False)
    assert first.memory.id == given.id
    assert first.memory.created_at.ToDatetime(UTC) == datetime(2023, 7, 22, 4, 15, tzinfo=UTC)
    again = await gateway.AddMemory(mem.AddMemoryRequest(memory=given))
    assert again.existed is True
    assert again.memory.id == given.id
    # a near-duplicate with its own id is kept apart, not merged
    twin = common.Memory(
        id="7a1c2e4f-0000-4000-8000-000000000002",
        personality_id=PERSONA,
        user_id=USER,
        text="alice sailed the kestrel through a storm",
    )
    second = await gateway.AddMemory(mem.AddMemoryRequest(memory=twin))
    assert (second.existed, second.merged, second.memory.id) == (False, False, twin.id)
    stats = await gateway.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=USER)
    )
    assert stats.total == 2
    assert stats.oldest.ToDatetime(UTC) == datetime(2023, 7, 22, 4, 15, tzinfo=UTC)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.AddMemory(
            mem.AddMemoryRequest(
                memory=common.Memory(id="not-a-uuid", personality_id=PERSONA, text="x")
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
