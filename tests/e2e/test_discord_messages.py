"""A user session in Discord: the fake Discord, the real bot, the whole mesh behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, running_bot
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    for _ in range(int(timeout / 0.05)):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError("condition never held")


async def delivered_job(world: World, key: str) -> common.Job:
    async def probe() -> common.Job | None:
        reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
        return reply.job if reply.job.status == common.JOB_STATUS_DELIVERED else None

    return await eventually(probe)


async def test_at_lilith_hi_is_answered_by_a_webhook_message_from_lilith(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "Hello, mortal."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hi")
        answers = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
        job = await delivered_job(world, f"{said.id}:lilith")
    (answer,) = answers
    assert answer.author_name == "Lilith"
    assert answer.avatar_url == "https://example.com/lilith.png"
    assert answer.content.endswith("Hello, mortal.")
    # Webhooks cannot reply natively: the first line quotes the user's message with a link.
    quote = answer.content.split("\n")[0]
    assert "alice" in quote.lower() and str(said.id) in quote
    call = world.provider.chat_requests()[-1]
    assert call.api_key == USER_KEY
    assert call.body["messages"][-1]["content"].endswith("hi")
    assert "@Lilith" not in call.body["messages"][-1]["content"]
    assert int(world.general["id"]) in world.discord.typing
    # ConfirmDelivery carried the posted message id.
    assert job.content == "Hello, mortal."
