"""What is no new edit, through the fake Discord and the whole mesh: Discord's update of a
message for a link preview or a pin (no new `edited_timestamp`) sends the gateway nothing; and
a 🔄 after one that failed asks inference again under a new key."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from prometheus_client import REGISTRY

from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .regenerations import regeneration_delivered, regeneration_key

pytestmark = pytest.mark.e2e


def served(service: str, method: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "grpc_server_handled_total",
            {"grpc_service": f"tzurot.v1.{service}", "grpc_method": method, "grpc_code": "OK"},
        )
        or 0.0
    )


def sent_edits() -> tuple[float, float]:
    return served("GatewayService", "EditMessage"), served("MemoryService", "EditTurn")


async def test_a_link_preview_or_pin_while_the_answer_is_made_is_no_edit(world: World) -> None:
    await world.set_key(world.alice)
    held = world.provider.hold = asyncio.Event()
    prompts = len(world.provider.chat_requests())
    before = sent_edits()
    try:
        async with running_bot(world) as bot:
            said = await world.discord.say(
                world.general, world.alice, "@Lilith look https://example.com/cat"
            )
            await world.discord.wait_until(lambda: len(world.provider.chat_requests()) > prompts)
            await world.discord.update_message(said, pinned=True)  # its edited_timestamp: None
            await handled(world)  # the update is being handled while the answer is held
            held.set()
            await world.delivered(f"{said.id}:lilith")
            await world.discord.update_message(said, pinned=False)  # after delivery too
            await settled(world, bot)
    finally:
        held.set()
        world.provider.hold = None
    assert len(world.provider.chat_requests()) == prompts + 1
    assert sent_edits() == before


async def test_a_regeneration_after_a_failed_one_asks_again(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a riddle")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        asked = len(world.provider.chat_requests())
        world.provider.fail_next(400)  # refused for good: not tried again
        await world.discord.react(first, world.alice, "🔄")
        await failed(world, await regeneration_key(world, f"{said.id}:lilith", 1))
        await settled(world, bot)
        assert len(world.provider.chat_requests()) == asked + 1
        await world.discord.react(first, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 2)
    assert len(world.provider.chat_requests()) == asked + 2
    assert first.deleted  # replaced by the second 🔄's answer


async def handled(world: World) -> None:
    """Every event sent so far has started being handled (a `/help` asked now is answered
    after them)."""
    help_asked = await world.discord.slash(world.general, world.bob, "help")
    await world.discord.wait_until(lambda: any(help_asked.texts()))


async def failed(world: World, key: str, within: float = 30.0) -> None:
    """Waits until the job for `key` has failed."""
    for _ in range(int(within / 0.05)):
        with contextlib.suppress(grpc.aio.AioRpcError):  # not sent by the bot yet
            reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
            if reply.job.status == common.JOB_STATUS_FAILED:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {key!r} did not fail within {within}s")
