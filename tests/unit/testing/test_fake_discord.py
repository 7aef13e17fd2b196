"""The fake Discord speaks Discord's protocol: checked with the real discord.py client."""

import asyncio

import discord
import yarl
from discord.gateway import DiscordWebSocket

from tzurot.testing.fake_discord import FakeDiscord


class Client(discord.Client):
    def __init__(self, shard_id: int | None = None, shard_count: int | None = None) -> None:
        super().__init__(
            # What the test needs: guilds, their messages, and their content (privileged).
            intents=discord.Intents(guilds=True, guild_messages=True, message_content=True),
            guild_ready_timeout=0.05,
            shard_id=shard_id,
            shard_count=shard_count,
        )
        self.seen: list[discord.Message] = []

    async def setup_hook(self) -> None:
        _, url, _ = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)


async def test_discord_py_connects_sees_messages_and_posts_through_webhooks() -> None:
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general", topic="t")
        alice = fake.make_user("alice")
        discord.http.Route.BASE = fake.api_base
        client = Client()
        task = asyncio.create_task(client.start(fake.token))
        try:
            await fake.wait_until(client.is_ready)
            (seen_guild,) = client.guilds
            assert [c.name for c in seen_guild.text_channels] == ["general"]

            said = await fake.say(general, alice, "hello")
            await fake.wait_until(lambda: client.seen)
            assert client.seen[0].content == "hello"
            assert client.seen[0].author.name == "alice"

            channel = seen_guild.text_channels[0]
            hook = await channel.create_webhook(name="Tzurot")
            sent = await hook.send("hi", username="Lilith", avatar_url="https://a/b.png", wait=True)
            await hook.edit_message(sent.id, content="hi there")
            (posted,) = fake.webhook_messages(general)
            assert (posted.author_name, posted.content, posted.avatar_url) == (
                "Lilith",
                "hi there",
                "https://a/b.png",
            )
            assert posted.edits == ["hi there"]
            await fake.wait_until(lambda: len(client.seen) == 2)  # Discord echoes webhook posts
            assert said.id != posted.id
        finally:
            await client.close()
            await task
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def test_a_wrong_token_is_refused() -> None:
    saved = discord.http.Route.BASE
    async with FakeDiscord() as fake:
        discord.http.Route.BASE = fake.api_base
        client = Client()
        try:
            try:
                await client.login("not-the-token")
            except discord.LoginFailure:
                pass
            else:
                raise AssertionError("login with a wrong token succeeded")
        finally:
            await client.close()
            discord.http.Route.BASE = saved


async def test_events_go_only_to_the_shard_owning_the_guild() -> None:
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        guilds = [fake.add_guild(f"g{i}") for i in range(4)]
        channels = [fake.add_channel(g, "general") for g in guilds]
        alice = fake.make_user("alice")
        discord.http.Route.BASE = fake.api_base
        clients = [Client(shard_id=i, shard_count=2) for i in range(2)]
        tasks = [asyncio.create_task(c.start(fake.token)) for c in clients]
        try:
            await fake.wait_until(lambda: all(c.is_ready() for c in clients))
            for channel in channels:
                await fake.say(channel, alice, "hi")
            await fake.wait_until(lambda: sum(len(c.seen) for c in clients) == 4)
            for shard, client in enumerate(clients):
                assert all((m.guild.id >> 22) % 2 == shard for m in client.seen if m.guild)
        finally:
            for client in clients:
                await client.close()
            await asyncio.gather(*tasks)
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved
