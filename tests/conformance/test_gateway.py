"""GatewayService conformance: who may call what, Generate's stream order and idempotency,
delivery, and the status codes clients rely on.

Runs against any implementation (see tests/conformance/conftest.py and docs/CONTRACTS.md).
The mesh behind an external gateway must accept TZUROT_CONFORMANCE_API_KEY as an openrouter
key (a `tzurot up --demo` mesh accepts any key) and answer model fake/echo.
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.conformance.authz import check_matrix
from tzurot.testing.conformance.target import Target
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

SERVICE = "gateway"
pytestmark = [pytest.mark.conformance, pytest.mark.asyncio(loop_scope="session")]


def seed(name: str) -> bytes:
    return (
        f"name: {name}\nsystem_prompt: You are {name}.\n"
        "llm: {provider: openrouter, model: fake/echo}\n"
    ).encode()


def actor() -> common.Actor:
    return common.Actor(user_id=f"conformance:{uuid.uuid4().hex[:10]}", display_name="Conformer")


def generate(who: common.Actor, personality: str, key: str, content: str) -> gw.GenerateRequest:
    return gw.GenerateRequest(
        actor=who,
        location=common.Location(guild_id="conformance", channel_id=f"conf-{key}"),
        personality=personality,
        content=content,
        idempotency_key=key,
        message_ids=[key],
    )


async def imported(target: Target) -> str:
    name = f"Conformer{uuid.uuid4().hex[:6]}"
    reply = await target.stub("cli").ImportPersonality(
        gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=seed(name))
    )
    assert reply.created
    return name


async def test_authorization_matrix(target: Target) -> None:
    assert await check_matrix(target) == []


async def test_generate_streams_accepted_chunks_finished_and_replays_a_duplicate(
    target: Target,
) -> None:
    personality, who, key = await imported(target), actor(), f"conf-{uuid.uuid4().hex}"
    bot = target.stub("bot")
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=who, provider="openrouter", api_key=target.api_key)
    )
    events = [e async for e in bot.Generate(generate(who, personality, key, "ping"))]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "accepted"
    assert kinds[-1] == "finished"
    assert set(kinds[1:-1]) <= {"chunk"}
    job_id = events[0].accepted.job_id
    content = events[-1].finished.content
    assert content == "".join(e.chunk.text for e in events[1:-1])
    assert content
    assert events[-1].finished.job_id == job_id
    assert not events[0].accepted.replayed

    delivered = await bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"answer-{key}"])
    )
    assert delivered.job.status == common.JOB_STATUS_DELIVERED
    again = await bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"answer-{key}"])
    )
    assert again.job.status == common.JOB_STATUS_DELIVERED

    # The same idempotency key: the job's result again, never a second generation.
    replay = [e async for e in bot.Generate(generate(who, personality, key, "ping"))]
    assert replay[0].accepted.job_id == job_id
    assert replay[0].accepted.replayed
    assert replay[-1].finished.content == content
    status = await bot.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))
    assert status.job.idempotency_key == key


async def test_generate_without_a_key_fails_precondition_naming_the_provider(
    target: Target,
) -> None:
    personality, who = await imported(target), actor()
    key = f"conf-{uuid.uuid4().hex}"
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for _ in target.stub("bot").Generate(generate(who, personality, key, "hi")):
            pass
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "openrouter" in (failed.value.details() or "")
    assert from_rpc_error(failed.value).reason == "NO_API_KEY"


async def test_an_unknown_personality_is_not_found_with_error_info(target: Target) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await target.stub("cli").GetPersonality(gw.GetPersonalityRequest(personality="nobody-x"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert "nobody-x" in (missing.value.details() or "")
    error = from_rpc_error(missing.value)
    assert error.reason


async def test_an_empty_message_is_invalid_argument(target: Target) -> None:
    personality, who = await imported(target), actor()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in target.stub("bot").Generate(generate(who, personality, "conf-e", "")):
            pass
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
