"""Mentions reach the prompt: channels, roles and users a message mentions travel from the bot
through the gateway to inference, which puts them in its mentions block."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled

pytestmark = pytest.mark.e2e


async def test_channel_role_and_user_mentions_are_in_the_providers_request(world: World) -> None:
    await world.set_key(world.alice)
    art = world.discord.add_channel(world.guild, "art", topic="drawings and paintings")
    mods = world.discord.add_role(world.guild, "mods")
    async with running_bot(world):
        said = await world.discord.say(
            world.general,
            world.alice,
            f"@Lilith see <#{art['id']}>, ask <@&{mods['id']}> or <@{world.bob['id']}>",
            mention_roles=[mods["id"]],
        )
        await world.delivered(f"{said.id}:lilith")
    system = "\n".join(
        str(m["content"])
        for m in world.provider.chat_requests()[-1].body["messages"]
        if m["role"] == "system"
    )
    assert "- #art: drawings and paintings" in system
    assert "- @mods" in system
    assert "- @Bob" in system


async def test_a_mention_after_a_letter_that_lowers_to_two_is_taken_out_whole(
    world: World,
) -> None:
    """ "İ" lowers to two characters: the mention found after it is the one written, so the
    model reads the message without "@Lilith" and with every other word."""
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(
            world.general,
            world.alice,
            "İstanbul'dan selam @Lilith nasılsın",  # noqa: RUF001 - Turkish (a dotless i)
        )
        await world.delivered(f"{said.id}:lilith")
    (asked,) = [
        m["content"]
        for m in world.provider.chat_requests()[-1].body["messages"][-1:]
        if m["role"] == "user"
    ]
    assert "İstanbul'dan selam nasılsın" in str(asked)  # noqa: RUF001
    assert "Lilith" not in str(asked)


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("_waves at @Lilith_", "_waves at_"),
        ("**_@Lilith_** what now?", "what now?"),
        ("see main.py/@Lilith", "see main.py/"),
    ],
)
async def test_a_mention_in_emphasis_or_after_a_files_name_reaches_its_personality(
    world: World, said: str, kept: str
) -> None:
    """Discord's italics close right after the name, and "main.py/" is a file's name, not a
    link's host: the message addresses Lilith, who answers it without her mention nor the
    marks that held only it."""
    await world.set_key(world.alice)
    async with running_bot(world):
        message = await world.discord.say(world.general, world.alice, said)
        await world.delivered(f"{message.id}:lilith")
    (asked,) = [
        m["content"]
        for m in world.provider.chat_requests()[-1].body["messages"][-1:]
        if m["role"] == "user"
    ]
    assert "Lilith" not in str(asked)
    assert str(asked).endswith(kept), asked
    assert not {"_ ", "__", "**"} & {str(asked)[i : i + 2] for i in range(len(str(asked)))}


async def test_a_handle_ending_in_an_underscore_addresses_nobody(world: World) -> None:
    """Nothing opened emphasis before "@lilith_": it is someone's handle, not Lilith."""
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        asked = len(world.provider.chat_requests())
        await world.discord.say(world.general, world.alice, "follow @lilith_ on insta")
        await settled(world, bot)
    assert len(world.provider.chat_requests()) == asked
    assert world.discord.webhook_messages(world.general) == []
