"""Facts with supersession over real mTLS gRPC and Postgres: exchanges stored with
extract_facts wait for ClaimFactJobs; StoreFacts keeps facts and supersedes what they
contradict (kept as history, never retrieved); incognito exchanges queue nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings
from tzurot.memory.embedding import Embedder
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.component

if TYPE_CHECKING:
    Stub = mem_grpc.MemoryServiceAsyncStub

PERSONA = "lilith"
ALICE = "user-alice"


@pytest.fixture
async def served(
    memory_url: str, pki: Path, embedder: Embedder
) -> AsyncIterator[tuple[MemoryApp, Stub]]:
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    app = await start_memory(settings, embedder)
    channel = secure_channel(
        f"127.0.0.1:{app.port}",
        load_tls(pki / "gateway"),
        server_identity="memory",
        default_timeout=30.0,
    )
    try:
        yield app, mem_grpc.MemoryServiceStub(channel)
    finally:
        await channel.close()
        await app.stop()


def exchange(job_id: str, said: str, *, extract: bool = True) -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=job_id,
        channel_id="chan-1",
        personality_id=PERSONA,
        user_id=ALICE,
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Alice", content=said),
            common.Turn(role=common.ROLE_ASSISTANT, author_name="Lilith", content="noted"),
        ],
        extract_facts=extract,
    )


async def test_a_new_fact_supersedes_the_one_it_contradicts(
    served: tuple[MemoryApp, Stub],
) -> None:
    _app, stub = served
    await stub.StoreExchange(exchange("job-1", "I live in Paris now"))
    await stub.StoreExchange(exchange("job-quiet", "hello there", extract=False))
    claimed = await stub.ClaimFactJobs(mem.ClaimFactJobsRequest(limit=10))
    (batch,) = claimed.batches
    assert (batch.personality_id, batch.user_id, list(batch.job_ids)) == (
        PERSONA,
        ALICE,
        ["job-1"],
    )
    assert [t.content for t in batch.turns] == ["I live in Paris now", "noted"]
    assert list(batch.known_facts) == []
    assert uuid.UUID(batch.claim_token)  # StoreFacts stores while this claim holds the jobs
    # Leased: not handed out twice.
    assert not (await stub.ClaimFactJobs(mem.ClaimFactJobsRequest())).batches
    first = await stub.StoreFacts(
        mem.StoreFactsRequest(
            personality_id=PERSONA,
            user_id=ALICE,
            job_ids=["job-1"],
            facts=[mem.NewFact(text="Alice lives in Paris")],
            claim_token=batch.claim_token,
        )
    )
    (paris,) = first.facts
    assert paris.sector == common.MEMORY_SECTOR_SEMANTIC
    assert list(paris.tags) == ["fact"]
    assert set(paris.source_turn_ids) == {t.id for t in batch.turns}

    await stub.StoreExchange(exchange("job-2", "I moved to Berlin last week"))
    (batch,) = (await stub.ClaimFactJobs(mem.ClaimFactJobsRequest())).batches
    assert [(f.id, f.text) for f in batch.known_facts] == [(paris.id, "Alice lives in Paris")]
    second = await stub.StoreFacts(
        mem.StoreFactsRequest(
            personality_id=PERSONA,
            user_id=ALICE,
            job_ids=list(batch.job_ids),
            facts=[mem.NewFact(text="Alice lives in Berlin", supersedes=[paris.id])],
            claim_token=batch.claim_token,
        )
    )
    assert second.superseded == 1
    (berlin,) = second.facts

    found = await stub.QueryMemories(
        mem.QueryMemoriesRequest(
            personality_id=PERSONA, user_id=ALICE, query="where does Alice live", no_threshold=True
        )
    )
    texts = [m.text for m in found.memories]
    assert "Alice lives in Berlin" in texts
    assert "Alice lives in Paris" not in texts
    # History keeps the superseded fact.
    exported = await stub.ExportUser(mem.ExportUserRequest(user_id=ALICE))
    by_text = {m.text: m for m in exported.memories}
    assert by_text["Alice lives in Paris"].superseded_by == berlin.id
    assert by_text["Alice lives in Berlin"].superseded_by == ""
    # Nothing waits any more.
    assert not (await stub.ClaimFactJobs(mem.ClaimFactJobsRequest())).batches


async def test_an_incognito_exchange_queues_no_fact_job(served: tuple[MemoryApp, Stub]) -> None:
    _app, stub = served
    until = Timestamp()
    until.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    await stub.SetMemoryMode(
        mem.SetMemoryModeRequest(
            personality_id=PERSONA, user_id=ALICE, mode=mem.MemoryMode(incognito_until=until)
        )
    )
    await stub.StoreExchange(exchange("job-secret", "my password hint is my cat"))
    assert not (await stub.ClaimFactJobs(mem.ClaimFactJobsRequest())).batches


async def test_store_facts_refuses_bad_input(served: tuple[MemoryApp, Stub]) -> None:
    _app, stub = served
    for request in (
        mem.StoreFactsRequest(personality_id=PERSONA, user_id=ALICE),
        mem.StoreFactsRequest(
            personality_id=PERSONA,
            user_id=ALICE,
            job_ids=["job-1"],
            facts=[mem.NewFact(text="x", supersedes=["not-a-uuid"])],
        ),
        mem.StoreFactsRequest(
            personality_id=PERSONA, user_id=ALICE, job_ids=["job-1"], facts=[mem.NewFact()]
        ),
        mem.StoreFactsRequest(
            personality_id=PERSONA, user_id=ALICE, job_ids=["job-1"], claim_token="job-1"
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.StoreFacts(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
