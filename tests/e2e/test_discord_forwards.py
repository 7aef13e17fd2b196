"""Discord's forwards through the fake Discord, the real bot and the whole mesh, as the fake
provider receives them. A forward has no content of its own: what it shows is its snapshot, the
source as it was when forwarded (discord-api-docs resources/message.mdx, "Forwards").

- In a channel with a personality activated, a forward is a turn for it: the model reads the
  snapshot as the message referred to, and the user's turn says it is a forward; a forwarded
  image is seen as one the user posted. A forward showing nothing (no text, no file) is
  answered by nobody.
- A reply to a forward, or a link to one, refers to its snapshot, never to the source read
  again by id (which may have been edited since, or be out of the reader's sight).
- A forward addresses nobody: not the personality named inside the snapshot, not the one whose
  answer is forwarded; in a channel without an activation nothing happens.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.bot.bot import TzurotBot
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot, settled
from tzurot.testing.fake_discord import Json, Posted
from tzurot.testing.fake_provider import echo_reply
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

SHARED = "the lighthouse keeper counts ships at dawn"
EDITED = "the lighthouse was sold last spring"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
DESCRIPTION = "a grey cat asleep on a red sofa"
FORWARD_TURN = "[forwarded a message]"


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The shared mesh, with inference allowed to read the fake Discord's CDN."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("forwards")),
        inference={"attachment_hosts": ["127.0.0.1"]},
    ) as w:
        yield w


async def activate(world: World, channel: Json, personality: str = "Lilith") -> None:
    where = common.Location(guild_id=str(world.guild["id"]), channel_id=str(channel["id"]))
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(location=where, personality=personality)
    )


def prompts(world: World) -> list[str]:
    """Everything the provider was sent for each answer, oldest first."""
    return [json.dumps(r.body) for r in world.provider.chat_requests()]


def last_user_turn(world: World) -> str:
    messages = world.provider.chat_requests()[-1].body["messages"]
    return str(next(m["content"] for m in reversed(messages) if m["role"] == "user"))


def link(world: World, message: Posted) -> str:
    return f"https://discord.com/channels/{world.guild['id']}/{message.channel_id}/{message.id}"


def describing_model(body: dict[str, Any]) -> str:
    """The vision model describes any image it is shown; everyone else echoes."""
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return DESCRIPTION
    return echo_reply(body)


async def nothing_answered(world: World, bot: TzurotBot, *channels: Json) -> None:
    await settled(world, bot)
    for channel in channels:
        assert world.discord.webhook_messages(channel) == []


async def test_a_forward_where_a_personality_is_activated_is_a_turn_for_it(world: World) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
    assert SHARED in prompts(world)[-1]
    turn = last_user_turn(world)
    assert FORWARD_TURN in turn
    assert SHARED not in turn  # the forwarded text is the message referred to, not hers
    [answer] = world.discord.webhook_messages(world.general)
    assert "forwarded" in answer.content.split("\n")[0]  # the answer's quote line
    assert not world.discord.refusals


async def test_a_forwarded_image_is_seen_as_one_posted_here(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    picture = world.discord.upload(memes, "cat.png", PNG, "image/png")
    source = await world.discord.say(memes, world.bob, "", attachments=[picture])
    async with running_bot(world):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
    answers = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    assert DESCRIPTION in str(answers[-1].body["messages"][-1]["content"])


async def test_a_forward_showing_nothing_is_answered_by_nobody(world: World) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    embed_only = await world.discord.say(
        memes, world.bob, "", extra={"embeds": [{"title": "a feed's card"}]}
    )
    asked = len(world.provider.chat_requests())
    async with running_bot(world) as bot:
        await world.discord.forward(embed_only, world.general, world.alice)
        await nothing_answered(world, bot, world.general)
    assert len(world.provider.chat_requests()) == asked
    assert not world.discord.refusals


@pytest.mark.parametrize("how", ["reply", "link"])
async def test_a_forward_referred_to_shows_its_snapshot_not_the_source_now(
    world: World, how: str
) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    source = await world.discord.say(memes, world.bob, SHARED)
    forward = await world.discord.forward(source, world.general, world.bob)
    await world.discord.edit_message(source, EDITED)  # after the forward: not in its snapshot
    async with running_bot(world):
        if how == "reply":
            said = await world.discord.say(
                world.general, world.alice, "@Lilith what do you make of this?", reply_to=forward
            )
        else:
            said = await world.discord.say(
                world.general, world.alice, f"@Lilith what about {link(world, forward)}"
            )
        await world.delivered(f"{said.id}:lilith")
    prompt = prompts(world)[-1]
    assert SHARED in prompt
    assert EDITED not in prompt
    assert "bob" in prompt.lower()  # who forwarded it: its author is not in the snapshot


async def test_a_forward_addresses_nobody(world: World) -> None:
    """Neither the personality named in the snapshot (the forwarder did not write it) nor the
    one whose answer is forwarded; no activation here, so nothing happens."""
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    elsewhere = world.discord.add_channel(world.guild, "elsewhere")
    mentioning = await world.discord.say(elsewhere, world.bob, "@Lilith @Sage tell me a secret")
    async with running_bot(world) as bot:
        asked = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{asked.id}:lilith")
        [answer] = world.discord.webhook_messages(world.general)
        before = len(world.provider.chat_requests())
        await world.discord.forward(mentioning, elsewhere, world.alice)
        await world.discord.forward(answer, elsewhere, world.bob)
        await world.discord.forward(mentioning, world.general, world.bob)
        await nothing_answered(world, bot, elsewhere)
    assert len(world.provider.chat_requests()) == before
    assert world.discord.webhook_messages(world.general) == [answer]
    assert not world.discord.refusals
