"""MemoryService conformance: who may call what, history order, StoreExchange idempotency.

Runs against any implementation (see tests/conformance/conftest.py and docs/CONTRACTS.md).
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from tzurot.testing.conformance.authz import check_matrix
from tzurot.testing.conformance.target import Target
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

SERVICE = "memory"
pytestmark = [pytest.mark.conformance, pytest.mark.asyncio(loop_scope="session")]


def exchange(channel: str, personality: str, n: int) -> mem.StoreExchangeRequest:
    job = str(uuid.uuid4())
    return mem.StoreExchangeRequest(
        job_id=job,
        channel_id=channel,
        personality_id=personality,
        user_id=str(uuid.uuid4()),
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Ana", content=f"question {n}"),
            common.Turn(role=common.ROLE_ASSISTANT, author_name="Echo", content=f"answer {n}"),
        ],
    )


async def test_authorization_matrix(target: Target) -> None:
    assert await check_matrix(target) == []


async def test_history_is_oldest_first_and_limited_to_the_newest(target: Target) -> None:
    channel, personality = f"conf-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    gateway = target.stub("gateway")
    for n in range(3):
        await gateway.StoreExchange(exchange(channel, personality, n))
    full = await target.stub("inference").GetHistory(
        mem.GetHistoryRequest(channel_id=channel, personality_id=personality, limit=50)
    )
    newest = await gateway.GetHistory(
        mem.GetHistoryRequest(channel_id=channel, personality_id=personality, limit=2)
    )
    assert [t.content for t in full.turns] == [
        "question 0", "answer 0", "question 1", "answer 1", "question 2", "answer 2",
    ]  # fmt: skip
    assert [t.role for t in full.turns[:2]] == [common.ROLE_USER, common.ROLE_ASSISTANT]
    assert [t.content for t in newest.turns] == ["question 2", "answer 2"]


async def test_store_exchange_is_idempotent_on_job_id(target: Target) -> None:
    channel, personality = f"conf-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    request = exchange(channel, personality, 1)
    gateway = target.stub("gateway")
    first = await gateway.StoreExchange(request)
    again = await gateway.StoreExchange(request)
    history = await gateway.GetHistory(
        mem.GetHistoryRequest(channel_id=channel, personality_id=personality, limit=50)
    )
    assert (first.created, again.created) == (True, False)
    assert [t.id for t in again.turns] == [t.id for t in first.turns]
    assert len(history.turns) == 2


async def test_a_store_without_a_job_is_invalid_argument(target: Target) -> None:
    request = exchange("conf-channel", str(uuid.uuid4()), 1)
    request.job_id = ""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await target.stub("gateway").StoreExchange(request)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "job_id" in (refused.value.details() or "")
