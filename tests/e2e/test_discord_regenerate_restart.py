"""A 🔄 after a bot restart never lands on a key an earlier bot process asked: Alice's 🔄
fails for a lasting reason (her credit ran out), the bot restarts, she tops up and 🔄s again,
and inference is asked again (the failed job's stored refusal is not replayed)."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, running_bot, settled
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .regenerations import regeneration_keys

pytestmark = pytest.mark.e2e


async def test_a_regeneration_after_a_restart_asks_again_what_failed_before(
    world: World,
) -> None:
    await world.set_key(world.alice)
    replies = iter(["first take", "second take"])
    world.provider.reply = lambda body: next(replies)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a riddle")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        asked = len(world.provider.chat_requests())
        world.provider.spent_keys.add(USER_KEY)  # her credit runs out
        await world.discord.react(first, world.alice, "🔄")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) > 1  # the refusal
        )
        await settled(world, bot)
        refused = len(world.provider.chat_requests())
    (failed,) = await regeneration_keys(world, f"{said.id}:lilith")
    failed_job = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=failed))

    world.provider.spent_keys.discard(USER_KEY)  # she tops it up
    async with running_bot(world) as bot:  # a new bot process: it remembers no 🔄
        await world.discord.react(first, world.alice, "🔄")
        await settled(world, bot)
        keys = await regeneration_keys(world, f"{said.id}:lilith")
        if len(keys) > 1:
            await world.delivered(keys[-1])
        await settled(world, bot)

    assert failed_job.job.status == common.JOB_STATUS_FAILED
    assert refused == asked + 1  # the refused 🔄 asked the provider
    assert keys[0] == failed  # the 🔄 before the restart…
    assert len(keys) == 2  # …and one under a new key, not the failed one's
    assert len(world.provider.chat_requests()) == asked + 2  # asked again
    assert first.deleted  # replaced by the new answer
    assert world.discord.webhook_messages(world.general)[-1].content.endswith("second take")
