"""GetReplyContext over real mTLS gRPC and Postgres: a reply's turns and memories in one call,
the same as GetHistory followed by QueryMemories excluding what the turns hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import ReplyContextQuery
from tzurot.memory.embedding import EmbeddingError, Vector
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.reply_context import ReplyContextReader
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

from .conftest import Connect

if TYPE_CHECKING:
    from .conftest import Stub

pytestmark = pytest.mark.component


CHANNEL = "chan-ctx"
PERSONA = "lilith"
ALICE = "user-alice"


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def exchange(job_id: str, n: int, occurred_at: datetime) -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=job_id,
        channel_id=CHANNEL,
        personality_id=PERSONA,
        user_id=ALICE,
        occurred_at=stamp(occurred_at),
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Alice", content=f"q{n}"),
            common.Turn(role=common.ROLE_ASSISTANT, author_name="Lilith", content=f"a{n}"),
        ],
    )


async def remember(stub: Stub, text: str, created_at: datetime, user_id: str = ALICE) -> str:
    added = await stub.AddMemory(
        mem.AddMemoryRequest(
            memory=common.Memory(
                personality_id=PERSONA, user_id=user_id, text=text, created_at=stamp(created_at)
            )
        )
    )
    return added.memory.id


def ask(**fields: object) -> mem.GetReplyContextRequest:
    values: dict[str, object] = {
        "channel_id": CHANNEL,
        "personality_id": PERSONA,
        "history_limit": 2,
        "user_id": ALICE,
        "query": "sailing lake",
        "memory_limit": 5,
        "threshold": 0.1,
    }
    return mem.GetReplyContextRequest(**{**values, **fields})  # type: ignore[arg-type]


async def conversation(gateway: Stub, now: datetime) -> None:
    """Two exchanges, three and one day ago: the newest two turns are a day old."""
    await gateway.StoreExchange(exchange("job-ctx-0", 0, now - timedelta(days=3)))
    await gateway.StoreExchange(exchange("job-ctx-1", 1, now - timedelta(days=1)))


async def test_one_call_gives_what_get_history_and_query_memories_give(connect: Connect) -> None:
    gateway, inference = connect("gateway"), connect("inference")
    now = datetime.now(UTC)
    await conversation(gateway, now)
    old = await remember(gateway, "alice loves sailing on the lake", now - timedelta(days=5))
    lore = await remember(gateway, "the lake is sacred for sailing", now - timedelta(days=4), "")
    await remember(gateway, "alice bought a sailing boat for the lake", now - timedelta(hours=1))

    found = await inference.GetReplyContext(ask())

    history = await inference.GetHistory(
        mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA, limit=2)
    )
    oldest = history.turns[0].created_at
    searched = await inference.QueryMemories(
        mem.QueryMemoriesRequest(
            personality_id=PERSONA,
            user_id=ALICE,
            query="sailing lake",
            limit=5,
            threshold=0.1,
            exclude_after=oldest,
        )
    )
    assert [t.content for t in found.turns] == ["q1", "a1"]
    assert list(found.turns) == list(history.turns)
    # The boat (an hour old) is newer than the turns in the prompt: it is theirs to tell.
    assert {m.id for m in found.memories} == {old, lore}
    assert [m.id for m in found.memories] == [m.id for m in searched.memories]
    assert not found.memories_unavailable


async def test_without_a_query_there_is_no_search(connect: Connect) -> None:
    gateway, inference = connect("gateway"), connect("inference")
    await conversation(gateway, datetime.now(UTC))
    found = await inference.GetReplyContext(ask(query=""))
    assert len(found.turns) == 2
    assert (list(found.memories), found.memories_unavailable) == ([], False)


async def test_a_refused_search_still_gives_the_turns(connect: Connect) -> None:
    gateway, inference = connect("gateway"), connect("inference")
    await conversation(gateway, datetime.now(UTC))
    found = await inference.GetReplyContext(ask(query="x" * 4001))
    assert [t.content for t in found.turns] == ["q1", "a1"]
    assert (list(found.memories), found.memories_unavailable) == ([], True)


async def test_a_bad_conversation_fails_the_call(connect: Connect) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await connect("inference").GetReplyContext(ask(channel_id=""))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "channel_id" in (refused.value.details() or "")


async def test_the_askers_name_is_a_reading_hint_only(connect: Connect) -> None:
    """An embedder that reads texts alone (here the OpenAI-compatible one) reads the query
    alone whoever asked; a name longer than a turn's author may be is refused."""
    gateway, inference = connect("gateway"), connect("inference")
    now = datetime.now(UTC)
    await conversation(gateway, now)
    await remember(gateway, "alice loves sailing on the lake", now - timedelta(days=5))
    alone = await inference.GetReplyContext(ask())
    named = await inference.GetReplyContext(ask(query_author="Alice"))
    assert [m.id for m in named.memories] == [m.id for m in alone.memories]
    assert len(alone.memories) == 1
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await inference.GetReplyContext(ask(query_author="A" * 129))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "query_author" in (refused.value.details() or "")


async def test_only_inference_may_read_a_reply_context(connect: Connect) -> None:
    for identity in ("gateway", "bot", "keyvault"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await connect(identity).GetReplyContext(ask())
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


class BrokenEmbedder:
    """The Embedder protocol, failing as an unreachable embedding endpoint does."""

    dimensions = 384

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        raise EmbeddingError("the embedder is down")

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_an_embedder_down_leaves_the_turns(engine: AsyncEngine, connect: Connect) -> None:
    await conversation(connect("gateway"), datetime.now(UTC))
    reader = ReplyContextReader(
        History(PostgresTurnStore(engine)),
        LongTermMemory(PostgresMemoryStore(engine), BrokenEmbedder()),
    )
    found = await reader.read(
        ReplyContextQuery(
            channel_id=CHANNEL,
            personality_id=PERSONA,
            history_limit=2,
            user_id=ALICE,
            query="sailing lake",
        )
    )
    assert [t.content for t in found.turns] == ["q1", "a1"]
    assert (found.memories, found.memories_unavailable) == ([], True)
