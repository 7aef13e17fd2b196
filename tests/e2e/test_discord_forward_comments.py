"""A comment sent with a forward, beyond the process that paired them, through the fake
Discord, the fake PluralKit, the real bot and the whole mesh (tzurot.bot.forwards).

- A comment that took a forward asked with both messages' ids (the gateway keeps them with the
  job): a 🔄 of its answer in a bot started since reads the forward again, fetched by its id,
  and asks with both ids too, so a 🔄 of that answer after another restart reads it as well.
- A comment sent through PluralKit hands its forward to its own repost (named by PluralKit's
  record), and only to it: the author's next forward, sent meanwhile, stays for its own
  comment, and neither forward is lost. A reply to the forward sent through PluralKit (its
  repost shows the reply by an embed, with no reference) takes it no more than a reply sent
  without PluralKit: the forward is answered itself.
"""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.fake_discord import FakePluralKit, Json, Posted

from .regenerations import regeneration_delivered
from .test_discord_forwards import QUOTED, SHARED, activate, last_user_turn

pytestmark = pytest.mark.e2e

OTHER = "the ferry leaves at noon"


@pytest.mark.parametrize("activated", [False, True])
async def test_regenerating_a_comments_answer_after_a_restart_reads_its_forward(
    world: World, activated: bool
) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    if activated:
        await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    comment = "what of this?" if activated else "@Lilith what of this?"
    async with running_bot(world):
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, comment)
        await world.delivered(f"{said.id}:lilith")
        [answer] = world.discord.webhook_messages(world.general)
    assert last_user_turn(world).endswith(f"what of this?\n{QUOTED}")
    async with running_bot(world):  # a new process: nothing of the pairing in memory
        await world.discord.react(answer, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
        [again] = world.discord.webhook_messages(world.general)
    assert last_user_turn(world).endswith(f"what of this?\n{QUOTED}")
    assert answer.deleted
    async with running_bot(world):  # again: the 🔄's own request was asked with both ids
        await world.discord.react(again, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 2)
    assert last_user_turn(world).endswith(f"what of this?\n{QUOTED}")
    assert again.deleted


async def repost(
    world: World, pk: FakePluralKit, original: Posted, member_name: str = "Fox"
) -> Posted:
    """PluralKit's repost of `original` through its webhook, recorded as its proxy."""
    hook, repost_id = world.discord.snowflake(), world.discord.snowflake()
    sender = original.data["author"]
    pk.register(repost_id, sender, member_name, original=original.id, channel=world.general)
    proxy_user: Json = {
        "id": str(hook),
        "username": member_name,
        "discriminator": "0000",
        "avatar": None,
        "bot": True,
    }
    return await world.discord.say(
        world.general, proxy_user, original.content, message_id=repost_id, webhook_id=hook
    )


async def test_a_reposted_comment_takes_its_own_forward_and_leaves_the_next(
    world: World,
) -> None:
    """Alice forwards one message with a comment sent through PluralKit, then forwards another
    with a comment of her own before PluralKit's repost of the first comment is read: the
    repost answers for the first forward, her own comment for the second."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    first = await world.discord.say(memes, world.bob, SHARED)
    second = await world.discord.say(memes, world.bob, OTHER)
    async with (
        FakePluralKit() as pk,
        running_bot(world, pluralkit_enabled=True, pluralkit_api_base=pk.base_url) as bot,
    ):
        assert bot.flow is not None
        forwards = bot.flow._forwards
        await world.discord.forward(first, world.general, world.alice)
        proxied = await world.discord.say(world.general, world.alice, "@Lilith what of the first?")
        assert await world.discord.wait_until(lambda: forwards.taken_by(proxied.id) is not None)
        await world.discord.forward(second, world.general, world.alice)
        reposted = await repost(world, pk, proxied)
        await world.discord.delete_message(proxied)  # PluralKit deletes the original
        assert await world.discord.wait_until(lambda: forwards.taken_by(reposted.id) is not None)
        own = await world.discord.say(world.general, world.alice, "@Lilith and the second?")
        await world.delivered(f"{reposted.id}:lilith")
        await world.delivered(f"{own.id}:lilith")
        await settled(world, bot)
    turns = [last_user_turn(world, i) for i in range(len(world.provider.chat_requests()))]
    assert any(t.endswith(f"what of the first?\n{QUOTED}") for t in turns), turns
    assert any(t.endswith(f"and the second?\n[forwarded a message]\n> {OTHER}") for t in turns), (
        turns
    )
    answers = [m for m in world.discord.webhook_messages(world.general) if m.author_name != "Fox"]
    assert len(answers) == 2  # one answer each (the other webhook message is the repost)


async def test_a_reply_to_the_forward_through_pluralkit_leaves_it_to_be_answered(
    world: World,
) -> None:
    """In a channel with Lilith activated, Alice forwards a message, then replies to her forward
    through PluralKit. Neither her reply (its reference names the forward) nor PluralKit's
    repost of it (a reply embed names it) is its comment: the forward is answered itself, and
    the repost's turn is its own text (review 298: the repost took it)."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    async with (
        FakePluralKit() as pk,
        running_bot(world, pluralkit_enabled=True, pluralkit_api_base=pk.base_url) as bot,
    ):
        forward = await world.discord.forward(source, world.general, world.alice)
        _, reposted = await pk.proxy(
            world.discord, world.general, world.alice, "what of it?", "Fox", reply_to=forward
        )
        await world.delivered(f"{reposted.id}:lilith")
        await world.delivered(f"{forward.id}:lilith", within=10)
        await settled(world, bot)
    turns = [last_user_turn(world, i) for i in range(len(world.provider.chat_requests()))]
    assert not any(t.endswith(f"what of it?\n{QUOTED}") for t in turns), turns
    assert any(t.endswith(QUOTED) for t in turns), turns  # the forward's own turn
