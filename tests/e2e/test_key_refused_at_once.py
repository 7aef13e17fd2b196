"""A wallet key a skill's service refuses turns inactive the moment it is refused, through the
whole mesh, even when the reply never reports it: Echo draws on Alice's OpenAI key and
searches on her Brave key, both refused (401); then the next round's model goes silent
(the reply runs on, as with an inference whose loop is stalled), or inference is killed
right after the refusals (its server stopped with no grace: no error, no report). Inference
says each refusal as it happens (GenerateReplyResponse.key_refused) and the gateway marks the
key inactive then, so `/wallet list` shows both inactive, her OpenRouter key (the answer's)
active. Before, the refusals went only with the reply's end, which never came: both keys
stayed active."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import tzurot.testing.mesh
from tests.e2e.refused_skill_keys import DRAW, SEARCH, refused_skill_keys, wallet
from tzurot.inference.app import InferenceApp, start_inference
from tzurot.testing.e2e import Harness, request
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.e2e

SILENT_SECONDS = 120.0
"""The answer's round after the refusals: silent far longer than the test waits."""
MARKED_WITHIN_SECONDS = 10.0


@pytest.fixture
async def inference_apps(monkeypatch: pytest.MonkeyPatch) -> list[InferenceApp]:
    """The mesh's inference, to kill it."""
    apps: list[InferenceApp] = []
    start = start_inference

    async def started(*args: Any, **kwargs: Any) -> InferenceApp:
        app = await start(*args, **kwargs)
        apps.append(app)
        return app

    monkeypatch.setattr(tzurot.testing.mesh, "start_inference", started)
    return apps


@pytest.fixture
async def harness(
    fresh_database: DatabaseFactory, tmp_path: Path, inference_apps: list[InferenceApp]
) -> AsyncIterator[Harness]:
    async with refused_skill_keys(fresh_database(), tmp_path) as h:
        yield h


async def reply_after_the_refusals(h: Harness) -> asyncio.Task[None]:
    """Echo draws and searches (both keys refused), then its answer's round goes silent;
    returns the running Generate once that round was asked (the refusals came before)."""
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue("Nothing drawn, nothing found, darling.")
    h.provider.stall_next(0.0)  # the tool round answers at once
    h.provider.stall_next(SILENT_SECONDS)

    async def generate() -> None:
        async for _ in h.bot.Generate(request("draw and research the moon"), timeout=300):
            pass

    running = asyncio.ensure_future(generate())
    async with asyncio.timeout(30):
        while len(h.provider.chat_requests()) < 2:
            assert not running.done()
            await asyncio.sleep(0.05)
    return running


async def inactive_soon(h: Harness) -> dict[str, bool]:
    """`/wallet list` once the refused keys read inactive, or after MARKED_WITHIN_SECONDS."""
    keys = await wallet(h)
    async with asyncio.timeout(MARKED_WITHIN_SECONDS + 5):
        for _ in range(int(MARKED_WITHIN_SECONDS / 0.2)):
            if not keys["brave"] and not keys["openai"]:
                break
            await asyncio.sleep(0.2)
            keys = await wallet(h)
    return keys


async def test_keys_refused_turn_inactive_while_the_reply_is_stalled(harness: Harness) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openai": True, "openrouter": True}
    running = await reply_after_the_refusals(h)
    try:
        assert await inactive_soon(h) == {"brave": False, "openai": False, "openrouter": True}
        assert not running.done()  # the reply has not ended: nothing reported it
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_keys_refused_turn_inactive_though_inference_was_killed_after(
    harness: Harness, inference_apps: list[InferenceApp]
) -> None:
    h = harness
    [inference] = inference_apps
    running = await reply_after_the_refusals(h)
    await inference.running.server.stop(None)  # killed: its calls end at once, unreported
    with pytest.raises(grpc.aio.AioRpcError):
        await running
    assert await inactive_soon(h) == {"brave": False, "openai": False, "openrouter": True}
