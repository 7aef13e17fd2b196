"""Editing a message around its answers, through the fake Discord and the whole mesh: a 🔄
after an edit answers the edited text, and an edit made while an answer (or a 🔄's) is still
streaming is not lost: history keeps the edited text."""

from __future__ import annotations

import asyncio

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e

STORY = " ".join(f"word{n}" for n in range(40))


def asked(world: World) -> list[list[dict[str, object]]]:
    """Lilith's prompts, oldest first."""
    return [
        r.body["messages"]
        for r in world.provider.chat_requests()
        if r.body["model"] == "fake/lilith"
    ]


async def handled(world: World) -> None:
    """Every event sent so far has started being handled (discord.py starts handlers in
    arrival order): a `/help` asked now is answered after them (`settled`, without waiting
    for the handlers still running)."""
    help_asked = await world.discord.slash(world.general, world.bob, "help")
    await world.discord.wait_until(lambda: any(help_asked.texts()))


def said_before(world: World) -> list[str]:
    """The users' turns before the last one in Lilith's last prompt (oldest first)."""
    return [str(m["content"]) for m in asked(world)[-1][:-1] if m["role"] == "user"]


async def test_a_regeneration_after_an_edit_answers_the_edited_text(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith my cat is called Tom")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        await world.discord.edit_message(said, "@Lilith my cat is called Felix")
        await settled(world, bot)
        await world.discord.react(first, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
        regenerated = asked(world)[-1]
        question = await world.discord.say(world.general, world.alice, "@Lilith his name?")
        await world.delivered(f"{question.id}:lilith")
    assert regenerated[-1]["content"] == "Alice: my cat is called Felix"
    assert [t for t in said_before(world) if "my cat" in t] == ["Alice: my cat is called Felix"]


@pytest.mark.parametrize("when", ["before its first word", "while it streams"])
async def test_an_edit_made_while_the_answer_is_made_is_kept(world: World, when: str) -> None:
    await world.set_key(world.alice)
    world.provider.reply = STORY
    world.provider.chunk_delay = 0.05
    held = world.provider.hold = asyncio.Event() if when == "before its first word" else None
    prompts = len(asked(world))
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith my cat is called Tom")
        if held is not None:  # asked with the text as it was, nothing posted yet
            await world.discord.wait_until(lambda: len(asked(world)) > prompts)
        else:
            await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        await world.discord.edit_message(said, "@Lilith my cat is called Felix")
        if held is not None:
            await handled(world)
            held.set()
        await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)
        world.provider.chunk_delay = 0.0
        question = await world.discord.say(world.general, world.alice, "@Lilith his name?")
        await world.delivered(f"{question.id}:lilith")
    assert asked(world)[prompts][-1]["content"] == "Alice: my cat is called Tom"
    assert [t for t in said_before(world) if "my cat" in t] == ["Alice: my cat is called Felix"]


async def test_an_edit_made_while_a_regeneration_streams_is_kept(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith my cat is called Tom")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        world.provider.reply = STORY
        world.provider.chunk_delay = 0.05
        await world.discord.react(first, world.alice, "🔄")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) > 1
        )
        await world.discord.edit_message(said, "@Lilith my cat is called Felix")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
        await settled(world, bot)
        world.provider.chunk_delay = 0.0
        question = await world.discord.say(world.general, world.alice, "@Lilith his name?")
        await world.delivered(f"{question.id}:lilith")
    assert [t for t in said_before(world) if "my cat" in t] == ["Alice: my cat is called Felix"]
