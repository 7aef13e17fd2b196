"""/character import with the card as a slash-command attachment, through the whole mesh: the
imported personality answers, with the card's prompt in what the provider receives."""

from __future__ import annotations

import json

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction

pytestmark = pytest.mark.e2e

CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Morwen",
        "description": "A lighthouse keeper who counts ships.",
        "personality": "patient, dry",
        "scenario": "A storm is coming.",
        "first_mes": "Another ship?",
        "mes_example": "",
        "system_prompt": "You are Morwen, keeper of the northern light.",
        "post_history_instructions": "",
        "creator_notes": "",
        "alternate_greetings": [],
        "tags": ["sea"],
        "creator": "tests",
        "character_version": "1",
        "extensions": {},
    },
}


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def test_a_json_card_attached_to_the_command_becomes_a_personality(world: World) -> None:
    await world.set_key(world.alice)
    card = world.discord.upload(
        world.general, "morwen.json", json.dumps(CARD).encode(), "application/json"
    )
    async with running_bot(world, personality_cache_seconds=0):
        imported = await world.discord.slash(
            world.general, world.alice, "character", {"card": card}, subcommand=["import"]
        )
        assert "Imported **Morwen**" in await answered(world, imported)
        said = await world.discord.say(world.general, world.alice, "@Morwen any ships?")
        await world.delivered(f"{said.id}:morwen")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name == "Morwen"
    system = "\n".join(
        str(m["content"])
        for m in world.provider.chat_requests()[-1].body["messages"]
        if m["role"] == "system"
    )
    assert "You are Morwen, keeper of the northern light." in system
    assert "A lighthouse keeper who counts ships." in system


async def test_a_file_that_is_no_card_is_refused_with_a_reason(world: World) -> None:
    junk = world.discord.upload(world.general, "notes.txt", b"just some notes", "text/plain")
    async with running_bot(world):
        refused = await world.discord.slash(
            world.general, world.alice, "character", {"card": junk}, subcommand=["import"]
        )
        text = await answered(world, refused)
    assert "is not a PNG, JSON or CHARX character card" in text
