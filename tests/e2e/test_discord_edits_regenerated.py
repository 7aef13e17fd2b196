"""A 🔄 of an edited message's answer, through the fake Discord and the whole mesh: its new
answer was asked the edited text, so a later update of the message with no new edit (a link
preview, a pin) sends the gateway nothing, and a new edit is sent; whether the bot still
remembered the old answer or (after a restart) built the request again from the message.
After a restart the bot cannot know whether the gateway has the message's edit (made while it
was down, say), so the 🔄 sends it once, when delivered, for every exchange of the message."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tzurot.bot.bot import TzurotBot
from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.fake_discord import Posted

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e


def edits_sent() -> float:
    labels = {
        "grpc_service": "tzurot.v1.GatewayService",
        "grpc_method": "EditMessage",
        "grpc_code": "OK",
    }
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def answered_then_edited(world: World, bot: TzurotBot) -> tuple[Posted, Posted]:
    """Alice's message, once Lilith's answer is delivered and the message edited: both."""
    said = await world.discord.say(world.general, world.alice, "@Lilith my cat is called Tom")
    await world.delivered(f"{said.id}:lilith")
    answer = world.discord.webhook_messages(world.general)[-1]
    edited = edits_sent()
    await world.discord.edit_message(said, "@Lilith my cat is called Felix")
    await settled(world, bot)
    assert edits_sent() == edited + 1
    return said, answer


async def regenerated_then_pinned(
    world: World, bot: TzurotBot, said: Posted, answer: Posted, *, resent: int
) -> None:
    """A 🔄 of `answer` (sending the message's edit `resent` times), then the message
    pinned (no edit sent), then edited again (sent)."""
    before = edits_sent()
    await world.discord.react(answer, world.alice, "🔄")
    await regeneration_delivered(world, f"{said.id}:lilith", 1)
    await settled(world, bot)
    asked = [r.body for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    assert asked[-1]["messages"][-1]["content"] == "Alice: my cat is called Felix"
    sent = edits_sent()
    assert sent == before + resent
    await world.discord.update_message(said, pinned=True)  # its edited_timestamp kept
    await settled(world, bot)
    assert edits_sent() == sent
    await world.discord.edit_message(said, "@Lilith my cat is called Felix the Third")
    await settled(world, bot)
    assert edits_sent() == sent + 1


@pytest.mark.parametrize("restarted", [False, True], ids=["remembered", "after a restart"])
async def test_an_update_after_a_regeneration_of_an_edited_message_is_no_edit(
    world: World, restarted: bool
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        said, answer = await answered_then_edited(world, bot)
        if not restarted:
            await regenerated_then_pinned(world, bot, said, answer, resent=0)
    if restarted:
        async with running_bot(world) as bot:
            await regenerated_then_pinned(world, bot, said, answer, resent=1)
    assert answer.deleted  # replaced by the 🔄's
