"""A mention between two spans of Discord's formatting reaches its personality, and the model
reads both spans as Discord shows them: whole and apart, without the mention."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


async def test_a_mention_between_two_italics_leaves_both_to_the_model(world: World) -> None:
    """Discord reads "*hi*@Sage*bye*" as italic "hi", "@Sage" and italic "bye": the marks
    next to the mention close and open those italics, so they stay, a space apart, rather
    than pair around the mention ("*hibye*")."""
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "*hi*@Sage*bye*")
        await world.delivered(f"{said.id}:sage")
    answered = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/sage"]
    asked = str(answered[0].body["messages"][-1]["content"])
    assert answered[0].body["messages"][-1]["role"] == "user"
    assert asked.endswith("*hi* *bye*"), asked
    assert "Sage" not in asked
