"""The first message end to end: bot → gateway → inference → fake provider, history in memory."""

from __future__ import annotations

import grpc
import pytest

from tzurot.testing.e2e import SYSTEM_PROMPT, USER_KEY, Harness, actor, converse, request, set_key
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def test_a_message_is_answered_with_the_users_stored_key_in_order(harness: Harness) -> None:
    harness.provider.reply = "alpha beta gamma delta"
    await set_key(harness)

    events, job_id = await converse(harness, request("hello there"))

    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "accepted"
    assert kinds[-1] == "finished"
    assert set(kinds[1:-1]) == {"chunk"}
    assert "".join(e.chunk.text for e in events[1:-1]) == "alpha beta gamma delta"
    finished = events[-1].finished
    assert finished.content == "alpha beta gamma delta"
    assert finished.job_id == job_id
    assert finished.usage.provider == "openrouter"
    assert finished.usage.model == "fake/echo"
    assert finished.usage.output_tokens > 0

    call = harness.provider.chat_requests()[-1]
    assert call.api_key == USER_KEY
    system = call.body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(SYSTEM_PROMPT)
    assert call.body["messages"][-1]["content"].endswith("hello there")

    status = await harness.bot.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))
    assert status.job.status == common.JOB_STATUS_DELIVERED


async def test_the_second_message_sees_the_first_in_its_prompt(harness: Harness) -> None:
    await set_key(harness)
    await converse(harness, request("my name is Alice"))
    await converse(harness, request("what is my name?"))

    second = harness.provider.chat_requests()[-1].body["messages"]
    contents = [m["content"] for m in second]
    assert any("my name is Alice" in c for c in contents[1:-1])
    assert any(m["role"] == "assistant" and "my name is Alice" in m["content"] for m in second)
    assert contents[-1].endswith("what is my name?")


async def test_history_is_per_channel(harness: Harness) -> None:
    await set_key(harness)
    await converse(harness, request("secret in channel one", channel="chan-1"))
    await converse(harness, request("hello from two", channel="chan-2"))
    prompt = harness.provider.chat_requests()[-1].body["messages"]
    assert not any("secret in channel one" in m["content"] for m in prompt)


async def test_a_wrong_key_fails_naming_the_provider_never_the_key(harness: Harness) -> None:
    await set_key(harness)
    harness.provider.valid_keys.clear()  # the provider revokes the key after it was stored
    wrong = USER_KEY
    req = request("hi")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.bot.Generate(req):
            pass
    err = caught.value
    assert err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED)
    details = err.details() or ""
    assert "openrouter" in details
    assert wrong not in details
    assert wrong[:8] not in details
    assert wrong[-6:] not in details
    status = await harness.bot.GetJobStatus(
        gw.GetJobStatusRequest(idempotency_key=req.idempotency_key)
    )
    assert status.job.status == common.JOB_STATUS_FAILED


async def test_setting_a_wrong_key_is_refused_and_not_stored(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await set_key(harness, key="sk-not-valid-at-all-123")
    assert "openrouter" in (caught.value.details() or "")
    assert "sk-not-valid" not in (caught.value.details() or "")
    listed = await harness.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    assert list(listed.keys) == []


async def test_no_key_at_all_says_how_to_add_one(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.bot.Generate(request("hi")):
            pass
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "openrouter" in (caught.value.details() or "")
    assert harness.provider.chat_requests() == []


async def test_unknown_personality_is_not_found_with_its_name(harness: Harness) -> None:
    req = request("hi")
    req.personality = "Nobody Here"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.bot.Generate(req):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Nobody Here" in (caught.value.details() or "")


@pytest.mark.parametrize("content", ["", "   ", "x" * 16_001])
async def test_empty_or_oversized_messages_are_invalid(harness: Harness, content: str) -> None:
    await set_key(harness)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.bot.Generate(request(content)):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert harness.provider.chat_requests() == []


async def test_provider_down_is_unavailable_after_retries_and_the_job_fails(
    harness: Harness,
) -> None:
    await set_key(harness)
    harness.provider.fail_next(503, times=10, retry_after=0)
    req = request("anyone there?")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.bot.Generate(req):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "openrouter" in (caught.value.details() or "")
    assert len(harness.provider.chat_requests()) >= 2  # asked again with backoff (answering.py)
    status = await harness.bot.GetJobStatus(
        gw.GetJobStatusRequest(idempotency_key=req.idempotency_key)
    )
    assert status.job.status == common.JOB_STATUS_FAILED


async def test_a_duplicate_request_replays_the_answer_without_a_second_call(
    harness: Harness,
) -> None:
    await set_key(harness)
    req = request("say it once", key="discord-message-42")
    first = [e async for e in harness.bot.Generate(req)]
    again = [e async for e in harness.bot.Generate(req)]
    assert first[-1].finished.content == again[-1].finished.content
    assert first[0].accepted.job_id == again[0].accepted.job_id
    assert len(harness.provider.chat_requests()) == 1


async def test_cancelling_mid_stream_leaves_no_turn_in_history(harness: Harness) -> None:
    await set_key(harness)
    harness.provider.reply = " ".join(f"w{i}" for i in range(40))
    harness.provider.chunk_delay = 0.05
    req = request("tell me a long story")
    call = harness.bot.Generate(req)
    seen = 0
    async for event in call:
        if event.HasField("chunk"):
            seen += 1
            if seen == 3:
                call.cancel()
                break

    async def failed() -> bool:  # the gateway notices the cancellation asynchronously
        status = await harness.bot.GetJobStatus(
            gw.GetJobStatusRequest(idempotency_key=req.idempotency_key)
        )
        return status.job.status == common.JOB_STATUS_FAILED

    await until(failed, "the cancelled job reads failed", within=30, every=0.05)

    harness.provider.reply = "ok"
    harness.provider.chunk_delay = 0
    await converse(harness, request("next"))
    prompt = harness.provider.chat_requests()[-1].body["messages"]
    assert not any("tell me a long story" in m["content"] for m in prompt)


async def test_only_bot_and_cli_may_call_the_gateway(harness: Harness) -> None:
    intruder = await harness.mesh.gateway_stub("inference")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await intruder.GetJobStatus(
            gw.GetJobStatusRequest(job_id="00000000-0000-0000-0000-000000000000")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
