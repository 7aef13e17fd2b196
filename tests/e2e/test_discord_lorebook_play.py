"""`/lorebook attach|detach|delete` through the fake Discord and the whole mesh: a book's entry
reaches the provider's prompt while the book is attached, and leaves it when the book is
detached or deleted; a deleted book is gone from `/lorebook list`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.cards import world_info
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction

pytestmark = pytest.mark.e2e

MANAGE_CHANNELS = str(1 << 4)
LORE = "LORE-MOOR: the moor swallows those who leave the path."


@pytest.fixture(autouse=True)
async def memory_loaded(world: World) -> None:
    """The answers here read long-term memory: wait until its model is loaded."""
    await world.memory_ready()


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def lorebook(world: World, user: dict[str, Any], sub: str, **options: object) -> str:
    done = await world.discord.slash(
        world.general, user, "lorebook", options, subcommand=[sub], permissions=MANAGE_CHANNELS
    )
    return await answered(world, done)


async def prompt_for(world: World, text: str) -> str:
    """Everything the provider was sent for Alice's `@Lilith {text}`."""
    said = await world.discord.say(world.general, world.alice, f"@Lilith {text}")
    await world.delivered(f"{said.id}:lilith")
    return json.dumps(world.provider.chat_requests()[-1].body["messages"])


async def test_lore_is_in_the_prompt_only_while_its_book_is_attached(world: World) -> None:
    await world.set_key(world.alice)
    book = json.dumps(world_info(moor={"key": ["moor"], "content": LORE})).encode()
    async with running_bot(world):
        file = world.discord.upload(world.general, "moor.json", book, "application/json")
        done = await world.discord.slash(
            world.general, world.alice, "lorebook", {"file": file}, subcommand=["import"]
        )
        assert "Imported **moor** (1 entry)" in await answered(world, done)
        unattached = await prompt_for(world, "what of the moor?")
        attached = await lorebook(world, world.alice, "attach", lorebook="moor", scope="channel")
        in_play = await prompt_for(world, "and the moor at night?")
        bobs = await lorebook(world, world.bob, "detach", lorebook="moor", scope="channel")
        detached = await lorebook(world, world.alice, "detach", lorebook="moor", scope="channel")
        out_of_play = await prompt_for(world, "the moor again?")
        await lorebook(world, world.alice, "attach", lorebook="moor", scope="channel")
        again = await prompt_for(world, "once more, the moor?")
        deleted = await lorebook(world, world.alice, "delete", lorebook="moor")
        after_delete = await prompt_for(world, "is the moor still there?")
        listed = await lorebook(world, world.alice, "list")
        gone = await lorebook(world, world.alice, "attach", lorebook="moor", scope="channel")
    assert LORE not in unattached  # the control: imported, not attached
    assert "**moor** is now in play (channel)." in attached
    assert LORE in in_play
    assert "no lorebook 'moor'" in bobs  # not his: not told it exists
    assert "**moor** is out of play there (channel)." in detached
    assert LORE not in out_of_play
    assert LORE in again
    assert deleted == "Deleted."
    assert LORE not in after_delete
    assert "moor" not in listed
    assert "no lorebook 'moor'" in gone
