"""History by token budget, page tokens, message ids after delivery and retention, over real
mTLS gRPC on loopback against real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.db.engine import create_engine
from tzurot.memory.app import MemoryApp
from tzurot.memory.consolidate import ConsolidateSettings, consolidate_once
from tzurot.memory.tables import turns
from tzurot.runtime.errors import InvalidArgument, from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

from .conftest import Connect

pytestmark = pytest.mark.component

CHANNEL = "chan-h"
PERSONA = "lilith"
U, A = common.ROLE_USER, common.ROLE_ASSISTANT


def exchange(n: int, question: str = "", answer: str = "") -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=f"job-{n:03d}",
        channel_id=CHANNEL,
        personality_id=PERSONA,
        user_id="u-1",
        turns=[
            common.Turn(
                role=common.ROLE_USER,
                author_name="Al",
                content=question or f"q{n}",
                message_ids=[f"u{n}"],
            ),
            common.Turn(
                role=common.ROLE_ASSISTANT,
                author_name="Li",
                content=answer or f"a{n}",
                message_ids=[f"a{n}"],
            ),
        ],
    )


def history(**fields: object) -> mem.GetHistoryRequest:
    return mem.GetHistoryRequest(channel_id=CHANNEL, personality_id=PERSONA, **fields)  # type: ignore[arg-type]


async def test_max_tokens_keeps_the_newest_turns_that_fit(connect: Connect) -> None:
    gateway = connect("gateway")
    for n in range(3):
        # "Al"/"Li" (2 chars) + 38 chars of content = 40 chars = 10 tokens, + 4 overhead.
        await gateway.StoreExchange(exchange(n, "q" * 38, "a" * 38))
    page = await connect("inference").GetHistory(history(max_tokens=14 * 3 + 13))
    assert [(t.job_id, t.role) for t in page.turns] == [
        ("job-001", A),
        ("job-002", U),
        ("job-002", A),
    ]
    assert page.next_page_token  # older turns remain
    everything = await gateway.GetHistory(history(max_tokens=1000))
    assert len(everything.turns) == 6
    assert everything.next_page_token == ""
    too_small = await gateway.GetHistory(history(max_tokens=5))
    assert list(too_small.turns) == []
    limited = await gateway.GetHistory(history(max_tokens=1000, limit=2))
    assert [t.job_id for t in limited.turns] == ["job-002", "job-002"]


async def test_page_tokens_walk_every_turn_once_even_across_a_cut_exchange(
    connect: Connect,
) -> None:
    gateway = connect("gateway")
    for n in range(5):
        await gateway.StoreExchange(exchange(n))
    seen: list[tuple[str, common.Role.ValueType]] = []
    pages = 0
    token = ""
    while True:
        page = await connect("inference").GetHistory(history(limit=3, page_token=token))
        pages += 1
        seen[:0] = [(t.job_id, t.role) for t in page.turns]
        token = page.next_page_token
        if not token:
            break
    expected = [(f"job-{n:03d}", role) for n in range(5) for role in (U, A)]
    assert seen == expected  # every turn once, oldest first, though pages cut exchanges
    assert pages == 4

    # The old `before` cursor loses the rest of a cut exchange; the token does not.
    first = await gateway.GetHistory(history(limit=3))
    assert [(t.job_id, t.role) for t in first.turns] == [
        ("job-003", A),
        ("job-004", U),
        ("job-004", A),
    ]
    by_time = await gateway.GetHistory(history(limit=1, before=first.turns[0].created_at))
    assert by_time.turns[0].job_id == "job-002"
    by_token = await gateway.GetHistory(history(limit=1, page_token=first.next_page_token))
    assert (by_token.turns[0].job_id, by_token.turns[0].role) == ("job-003", U)


async def test_bad_page_tokens_are_invalid_arguments(connect: Connect) -> None:
    gateway = connect("gateway")
    await gateway.StoreExchange(exchange(0))
    await gateway.StoreExchange(exchange(1))
    token = (await gateway.GetHistory(history(limit=1))).next_page_token
    assert token
    for request in (
        history(page_token="not-a-token"),
        history(page_token=token[:-3]),
        history(page_token=token, before=Timestamp(seconds=10)),
        history(max_tokens=-1),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.GetHistory(request)
        error = from_rpc_error(caught.value)
        assert isinstance(error, InvalidArgument)
        assert error.field in {"page_token", "max_tokens"}


async def age(memory_url: str, job_ids: list[str], days: int) -> None:
    engine = create_engine(memory_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(turns)
                .where(turns.c.job_id.in_(job_ids))
                .values(created_at=sa.func.now() - timedelta(days=days))
            )
    finally:
        await engine.dispose()


async def test_prune_history_deletes_only_old_turns(connect: Connect, memory_url: str) -> None:
    gateway = connect("gateway")
    for n in range(3):
        await gateway.StoreExchange(exchange(n))
    await age(memory_url, ["job-000", "job-001"], days=40)
    cutoff = Timestamp()
    cutoff.FromDatetime(datetime.now(UTC) - timedelta(days=30))
    pruned = await connect("memory").PruneHistory(mem.PruneHistoryRequest(older_than=cutoff))
    assert pruned.deleted == 4
    left = await gateway.GetHistory(history())
    assert {t.job_id for t in left.turns} == {"job-002"}

    future = Timestamp()
    future.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    for request in (mem.PruneHistoryRequest(), mem.PruneHistoryRequest(older_than=future)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.PruneHistory(request)
        error = from_rpc_error(caught.value)
        assert isinstance(error, InvalidArgument)
        assert error.field == "older_than"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await connect("inference").PruneHistory(mem.PruneHistoryRequest(older_than=cutoff))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_consolidation_pass_applies_the_retention_setting(
    connect: Connect, app: MemoryApp, pki: Path, memory_url: str
) -> None:
    gateway = connect("gateway")
    for n in range(2):
        await gateway.StoreExchange(exchange(n))
    await age(memory_url, ["job-000"], days=10)
    settings = ConsolidateSettings(tls_dir=pki / "memory", memory_addr=f"127.0.0.1:{app.port}")
    kept = await consolidate_once(settings)  # retention 0: history is kept forever
    assert kept.pruned_turns == 0
    assert len((await gateway.GetHistory(history())).turns) == 4

    settings.history_retention_days = 7
    report = await consolidate_once(settings)
    assert report.pruned_turns == 2
    assert {t.job_id for t in (await gateway.GetHistory(history())).turns} == {"job-001"}
