"""🔄 again and again through the fake Discord: each reaction makes a new answer, history keeps
exactly one exchange, and reactions by someone other than the user answered do nothing."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled

pytestmark = pytest.mark.e2e


async def test_regenerate_again_and_again_keeps_one_exchange(world: World) -> None:
    await world.set_key(world.alice)
    replies = iter(["first take", "second take", "third take", "noted"])
    world.provider.reply = lambda body: next(replies)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a riddle")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        # Not Bob's answer: neither reaction does anything.
        await world.discord.react(first, world.bob, "❌")
        await world.discord.react(first, world.bob, "🔄")
        await settled(world, bot)
        untouched = not first.deleted, len(world.provider.chat_requests())
        await world.discord.react(first, world.alice, "🔄")
        await world.delivered(f"{said.id}:lilith#regen1")
        second = world.discord.webhook_messages(world.general)[-1]
        await world.discord.react(second, world.alice, "🔄")
        await world.delivered(f"{said.id}:lilith#regen2")
        third = world.discord.webhook_messages(world.general)[-1]
        follow = await world.discord.say(world.general, world.alice, "@Lilith and the answer?")
        await world.delivered(f"{follow.id}:lilith")
        assert bot.flow is not None
        await bot.flow.idle(30)
    assert untouched == (True, 1)  # after Bob's reactions: still there, nothing paid
    assert first.content.endswith("first take")
    assert first.deleted
    assert second.content.endswith("second take")
    assert second.deleted
    assert third.content.endswith("third take")
    assert not third.deleted
    requests = world.provider.chat_requests()
    assert len(requests) == 4  # the answer, two regenerations, the follow-up: Bob's did nothing
    history = [
        (m["role"], str(m["content"]))
        for m in requests[-1].body["messages"][:-1]
        if m["role"] in {"user", "assistant"}
    ]
    assert [role for role, _ in history] == ["user", "assistant"]
    assert history[0][1].endswith("tell me a riddle")
    assert history[1][1] == "third take"
