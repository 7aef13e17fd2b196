"""A message shows the model only what its human sender may read, through the fake Discord:
linked messages need View Channel and Read Message History, a mentioned channel's name and
topic need View Channel, and a private thread (which the bot is in) needs its membership too.
The sender is the member writing or the human behind a PluralKit proxy, on the first answer
and on 🔄; a sender the server does not know shows no link."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tzurot.bot.bot import TzurotBot
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakePluralKit, Json, Posted

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e

HIDDEN = "the staff payroll for March"
VISIBLE = "a linked visible message"
STAFF_TOPIC = "dismissals and salaries"
SECRET = "the surprise party is on Friday"


@asynccontextmanager
async def with_pluralkit(world: World, pk: FakePluralKit) -> AsyncIterator[TzurotBot]:
    async with running_bot(
        world,
        pluralkit_enabled=True,
        pluralkit_api_base=pk.base_url,
        pluralkit_retry_delay_seconds=0.5,
    ) as bot:
        yield bot


def link(world: World, message: Posted) -> str:
    return f"https://discord.com/channels/{world.guild['id']}/{message.channel_id}/{message.id}"


async def staff_and_general_links(world: World) -> str:
    """Links to a message in #staff, which Alice cannot see, and to one in #general."""
    staff = world.discord.add_channel(world.guild, "staff")
    world.discord.hide_channel_from(staff, world.alice)
    hidden = await world.discord.say(staff, world.bob, HIDDEN)
    visible = await world.discord.say(world.general, world.bob, VISIBLE)
    return f"{link(world, visible)} and {link(world, hidden)}"


def private_thread(world: World, *, alice_joined: bool) -> Json:
    """A private thread in #general that the bot and Bob are in, and Alice only if she joined
    (she can see #general either way: discord.py's permissions let her read it all)."""
    thread = world.discord.add_thread(world.guild, world.general, "surprise-plans", private=True)
    for user in (world.discord.bot_user, world.bob, *([world.alice] if alice_joined else [])):
        world.discord.join_thread(thread, user)
    return thread


def last_prompt(world: World) -> str:
    """Everything the provider was sent for the latest answer."""
    return json.dumps(world.provider.chat_requests()[-1].body)


def lilith(world: World) -> list[Posted]:
    return [m for m in world.discord.webhook_messages(world.general) if m.author_name == "Lilith"]


async def test_a_pluralkit_message_shows_only_the_links_its_sender_can_read(world: World) -> None:
    await world.set_key(world.alice)
    links = await staff_and_general_links(world)
    async with FakePluralKit() as pk, with_pluralkit(world, pk):
        _, repost = await pk.proxy(
            world.discord, world.general, world.alice, f"@Lilith summarise {links}", "Fox"
        )
        await world.delivered(f"{repost.id}:lilith")
    prompt = last_prompt(world)
    assert VISIBLE in prompt
    assert HIDDEN not in prompt


async def test_regenerating_a_pluralkit_answer_shows_only_the_links_its_sender_can_read(
    world: World,
) -> None:
    await world.set_key(world.alice)
    links = await staff_and_general_links(world)
    async with FakePluralKit() as pk:
        async with with_pluralkit(world, pk):
            _, repost = await pk.proxy(
                world.discord, world.general, world.alice, f"@Lilith summarise {links}", "Fox"
            )
            await world.delivered(f"{repost.id}:lilith")
        (answer,) = lilith(world)
        # A new process: the request is rebuilt from the repost, fetched from Discord.
        async with with_pluralkit(world, pk):
            await world.discord.react(answer, world.alice, "🔄")
            await regeneration_delivered(world, f"{repost.id}:lilith", 1)
    prompt = last_prompt(world)
    assert VISIBLE in prompt
    assert HIDDEN not in prompt


async def test_regenerating_after_a_restart_shows_only_the_links_the_member_can_read(
    world: World,
) -> None:
    await world.set_key(world.alice)
    links = await staff_and_general_links(world)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, f"@Lilith summarise {links}")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = lilith(world)
    # Fetched from Discord's REST API the message has no member, only a user: Alice is looked up.
    async with running_bot(world):
        await world.discord.react(answer, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
    prompt = last_prompt(world)
    assert VISIBLE in prompt
    assert HIDDEN not in prompt


async def test_a_pluralkit_sender_who_is_not_a_member_shows_no_links(world: World) -> None:
    stranger: Json = {"id": str(world.discord.snowflake()), "username": "stranger"}  # not here
    await world.set_key(stranger)
    visible = await world.discord.say(world.general, world.bob, VISIBLE)
    proxy: Json = {  # PluralKit's webhook, as Discord shows it
        "id": str(world.discord.snowflake()),
        "username": "Fox",
        "discriminator": "0000",
        "avatar": None,
        "bot": True,
    }
    proxied = world.discord.snowflake()
    async with FakePluralKit() as pk, with_pluralkit(world, pk):
        pk.register(proxied, stranger, "Fox")
        await world.discord.say(
            world.general,
            proxy,
            f"@Lilith summarise {link(world, visible)}",
            message_id=proxied,
            webhook_id=int(proxy["id"]),
        )
        await world.delivered(f"{proxied}:lilith")
    prompt = last_prompt(world)
    assert "summarise" in prompt
    assert VISIBLE not in prompt  # whose view it would be is unknown: no link is followed


@pytest.mark.parametrize("through_pluralkit", [False, True], ids=["member", "pluralkit"])
async def test_a_channel_the_sender_cannot_see_is_not_named_to_the_model(
    world: World, through_pluralkit: bool
) -> None:
    await world.set_key(world.alice)
    art = world.discord.add_channel(world.guild, "art", topic="drawings and paintings")
    staff = world.discord.add_channel(world.guild, "staff", topic=STAFF_TOPIC)
    world.discord.hide_channel_from(staff, world.alice)
    text = f"@Lilith compare <#{art['id']}> with <#{staff['id']}>"
    if through_pluralkit:
        async with FakePluralKit() as pk, with_pluralkit(world, pk):
            _, repost = await pk.proxy(world.discord, world.general, world.alice, text, "Fox")
            await world.delivered(f"{repost.id}:lilith")
    else:
        async with running_bot(world):
            said = await world.discord.say(world.general, world.alice, text)
            await world.delivered(f"{said.id}:lilith")
    prompt = last_prompt(world)
    assert "compare #art with <#" in prompt  # the hidden one stays as Discord's markup
    assert "drawings and paintings" in prompt
    assert "#staff" not in prompt
    assert STAFF_TOPIC not in prompt


@pytest.mark.parametrize("alice_joined", [False, True], ids=["not-in-it", "member"])
async def test_a_link_into_a_private_thread_is_quoted_only_for_its_members(
    world: World, alice_joined: bool
) -> None:
    await world.set_key(world.alice)
    secret = await world.discord.say(
        private_thread(world, alice_joined=alice_joined), world.bob, SECRET
    )
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, f"@Lilith summarise {link(world, secret)}"
        )
        await world.delivered(f"{said.id}:lilith")
    prompt = last_prompt(world)
    assert "summarise" in prompt
    assert (SECRET in prompt) is alice_joined


async def test_a_private_thread_whose_membership_discord_does_not_tell_is_not_quoted(
    world: World,
) -> None:
    await world.set_key(world.alice)
    secret = await world.discord.say(private_thread(world, alice_joined=True), world.bob, SECRET)
    world.discord.fail_next("get_thread_member", 403, {"code": 50001, "message": "Missing Access"})
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, f"@Lilith summarise {link(world, secret)}"
        )
        await world.delivered(f"{said.id}:lilith")
    assert SECRET not in last_prompt(world)  # fail closed


@pytest.mark.parametrize("alice_joined", [False, True], ids=["not-in-it", "member"])
async def test_a_private_thread_is_named_to_the_model_only_for_its_members(
    world: World, alice_joined: bool
) -> None:
    await world.set_key(world.alice)
    thread = private_thread(world, alice_joined=alice_joined)
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, f"@Lilith what is planned in <#{thread['id']}>?"
        )
        await world.delivered(f"{said.id}:lilith")
    prompt = last_prompt(world)
    assert "what is planned in" in prompt
    assert ("#surprise-plans" in prompt) is alice_joined
