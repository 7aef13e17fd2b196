"""A wallet key a skill's service refuses turns inactive even when the reply then fails,
through the whole mesh: Echo draws on Alice's OpenAI key, which OpenAI refuses (401), and
searches the web on her Brave key, which Brave refuses; the next round's answer then fails
(the provider's 502 mid-stream), so no finished reply reports those refusals. Inference's
error names them instead, and `/wallet list` shows both keys inactive all the same, her
OpenRouter key (the answer's, which answered the first round) active."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.e2e.refused_skill_keys import (
    ANSWER,
    BRAVE_KEY,
    DRAW,
    OPENAI_KEY,
    SEARCH,
    refused_skill_keys,
    wallet,
)
from tzurot.testing.e2e import USER_KEY, Harness, request
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    """The shared mesh (refused_skill_keys.py); a failed round is not tried again: the reply
    fails at once."""
    no_retry = {"provider_max_retries": 0}
    async with refused_skill_keys(fresh_database(), tmp_path, inference=no_retry) as h:
        yield h


async def collect(
    stream: AsyncIterable[gw.GenerateResponse], into: list[gw.GenerateResponse]
) -> None:
    async for event in stream:
        into.append(event)


async def test_keys_a_skills_services_refused_turn_inactive_though_the_reply_failed(
    harness: Harness,
) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openai": True, "openrouter": True}
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue(ANSWER)
    h.provider.error_after_chunks = 0  # the answer's round: a 502 before its first word
    events: list[gw.GenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await collect(h.bot.Generate(request("draw and research the moon")), events)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not any(event.HasField("finished") for event in events)
    [drawing] = h.provider.image_requests()
    assert drawing.api_key == OPENAI_KEY  # asked on her key, and refused (401)
    assert len(h.provider.chat_requests()) == 2  # the tool round, then the failed one
    for key in (OPENAI_KEY, BRAVE_KEY, USER_KEY):  # names travel, never a key
        assert key not in (failed.value.details() or "")
        assert key not in str(failed.value.trailing_metadata())
    assert await wallet(h) == {"brave": False, "openai": False, "openrouter": True}
