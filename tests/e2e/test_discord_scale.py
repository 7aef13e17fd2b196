"""PluralKit, references and sharding through the fake Discord."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, recording_gateway, running_bot
from tzurot.testing.fake_discord import FakePluralKit

pytestmark = pytest.mark.e2e


async def test_a_pluralkit_proxied_message_acts_for_the_human_behind_it(world: World) -> None:
    await world.set_key(world.alice)
    async with FakePluralKit() as pk:
        proxy = world.discord.make_user("Fox (Alice's system)", bot=True)
        proxy_hook = world.discord.snowflake()
        message_id = world.discord.snowflake()
        pk.register(message_id, world.alice, "Fox")
        async with running_bot(
            world,
            pluralkit_enabled=True,
            pluralkit_api_base=pk.base_url,
            pluralkit_retry_delay_seconds=0,
        ):
            proxied = await world.discord.say(
                world.general,
                proxy,
                "@Lilith hi from Fox",
                message_id=message_id,
                webhook_id=proxy_hook,
            )
            await world.discord.dispatch_message(proxied)  # a duplicate: one lookup, one answer
            (answer,) = await world.discord.wait_until(
                lambda: (
                    world.discord.webhook_messages(world.general)
                    and [
                        m
                        for m in world.discord.webhook_messages(world.general)
                        if m.author_name == "Lilith"
                    ]
                )
            )
            # An unknown bot's webhook message is not PluralKit's: ignored.
            other = await world.discord.say(
                world.general, proxy, "@Lilith from some other bot", webhook_id=proxy_hook
            )
            await world.discord.wait_until(lambda: other.id in pk.lookups)
    # Alice's key paid for it: the human's wallet applies.
    assert world.provider.chat_requests()[-1].api_key == USER_KEY
    assert pk.lookups.count(message_id) == 1
    assert answer.content.endswith("hi from Fox")  # the echo of what Fox said
    lilith = [m for m in world.discord.webhook_messages(world.general) if m.author_name == "Lilith"]
    assert len(lilith) == 1


async def test_references_follow_the_reply_chain_and_links_but_not_hidden_channels(
    world: World,
) -> None:
    await world.set_key(world.alice)
    secret = world.discord.add_channel(world.guild, "secret")
    world.discord.hide_channel_from(secret, world.alice)
    hidden = await world.discord.say(secret, world.bob, "the hidden plans")
    first = await world.discord.say(world.general, world.bob, "the cake is in the oven")
    second = await world.discord.say(world.general, world.bob, "it needs sugar", reply_to=first)
    link = f"https://discord.com/channels/{world.guild['id']}/{secret['id']}/{hidden.id}"
    visible = await world.discord.say(world.general, world.bob, "a linked visible message")
    seen = f"https://discord.com/channels/{world.guild['id']}/{world.general['id']}/{visible.id}"
    async with recording_gateway(world) as (recorder, gateway), running_bot(world, gateway=gateway):
        await world.discord.say(
            world.general, world.alice, f"@Lilith what about {seen} and {link}?", reply_to=second
        )
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
    (request,) = recorder.generated
    refs = [(r.content, r.depth, r.author_name) for r in request.references]
    assert refs == [
        ("it needs sugar", 1, "Bob"),
        ("a linked visible message", 1, "Bob"),
        ("the cake is in the oven", 2, "Bob"),  # breadth first, through the reply chain
    ]
    assert all(r.created_at.seconds > 0 for r in request.references)
    # The link into #secret, which Alice cannot see, was not even fetched.
    assert ("GET", f"/api/v10/channels/{secret['id']}/messages/{hidden.id}") not in (
        world.discord.requests
    )


async def test_two_shards_never_answer_the_same_message_twice(world: World) -> None:
    await world.set_key(world.alice)
    fake = world.discord
    guilds = [world.guild, fake.add_guild("Second"), fake.add_guild("Third")]
    channels = [world.general] + [fake.add_channel(g, "general") for g in guilds[1:]]
    async with (
        running_bot(world, shard_index=0, shard_count=2) as zero,
        running_bot(world, pod_name="bot-1", shard_count=2) as one,
    ):
        assert {g.id for g in zero.guilds}.isdisjoint({g.id for g in one.guilds})
        assert len(zero.guilds) + len(one.guilds) == len(fake.guilds)
        assert sorted(s.shard for s in fake.sessions) == [(0, 2), (1, 2)]
        for channel in channels:
            await fake.say(channel, world.alice, "@Lilith hello")
        await fake.wait_until(lambda: all(fake.webhook_messages(c) for c in channels))
    assert [len(fake.webhook_messages(c)) for c in channels] == [1, 1, 1]


async def test_one_process_can_run_a_group_of_shards(world: World) -> None:
    await world.set_key(world.alice)
    fake = world.discord
    other = fake.add_guild("Another")
    channels = [world.general, fake.add_channel(other, "general")]
    # Four shards in two groups: this is group 0 (shards 0 and 2); nothing runs group 1 here.
    async with running_bot(world, shard_count=4, shard_groups=2, shard_index=0) as bot:
        assert sorted(bot.shards) == [0, 2]
        assert sorted(s.shard for s in fake.sessions) == [(0, 4), (2, 4)]
        ours = [c for c in channels if (int(c["guild_id"]) >> 22) % 4 in {0, 2}]
        for channel in channels:
            await fake.say(channel, world.alice, "@Lilith hello")
        await fake.wait_until(lambda: all(fake.webhook_messages(c) for c in ours))
    for channel in channels:
        assert len(fake.webhook_messages(channel)) == (1 if channel in ours else 0)


async def test_attachments_and_channel_role_mentions_reach_the_gateway_readably(
    world: World,
) -> None:
    await world.set_key(world.alice)
    art = world.discord.add_channel(world.guild, "art", topic="drawings and paintings")
    mods = world.discord.add_role(world.guild, "mods")
    files = [
        {
            "id": str(world.discord.snowflake()),
            "filename": "cat.png",
            "size": 2048,
            "url": "https://cdn.example/cat.png",
            "proxy_url": "https://cdn.example/cat.png",
            "content_type": "image/png",
        },
        {
            "id": str(world.discord.snowflake()),
            "filename": "voice-message.ogg",
            "size": 4096,
            "url": "https://cdn.example/voice.ogg",
            "proxy_url": "https://cdn.example/voice.ogg",
            "content_type": "audio/ogg",
        },
        {
            "id": str(world.discord.snowflake()),
            "filename": "report.pdf",
            "size": 100,
            "url": "https://cdn.example/report.pdf",
            "proxy_url": "https://cdn.example/report.pdf",
            "content_type": "application/pdf",
        },
    ]
    async with recording_gateway(world) as (recorder, gateway), running_bot(world, gateway=gateway):
        await world.discord.say(
            world.general,
            world.alice,
            f"@Lilith look in <#{art['id']}>, ask <@&{mods['id']}>",
            attachments=files,
            mention_roles=[mods["id"]],
        )
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
    (request,) = recorder.generated
    assert request.content.startswith("look in #art, ask @mods")
    assert "#art is about: drawings and paintings" in request.content
    assert "report.pdf: not read" in request.content
    assert [(a.filename, a.content_type) for a in request.attachments] == [
        ("cat.png", "image/png"),
        ("voice-message.ogg", "audio/ogg"),
    ]
    assert request.location.channel_id == world.general["id"]
    assert request.actor.user_id == world.alice["id"]
