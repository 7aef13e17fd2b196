"""A dead bot's half answer finished by the real webhook pool and discord.py, against the fake
Discord: in a thread whose history the bot may not read, its webhook reads the previews it
posted (Get Webhook Message, with the thread's id) and the answer is finished in them."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import yarl
from discord.gateway import DiscordWebSocket

from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.unfinished import finish_unfinished
from tzurot.bot.webhooks import WebhookPool
from tzurot.testing.fake_discord import FakeDiscord
from tzurot.testing.fake_discord.rules import Permission
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class Client(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)

    async def setup_hook(self) -> None:
        _, url, _ = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


@contextlib.asynccontextmanager
async def connected(fake: FakeDiscord) -> AsyncIterator[Client]:
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    client = Client()
    task = asyncio.create_task(client.start(fake.token))
    try:
        await fake.wait_until(lambda: task.done() or client.is_ready())
        if task.done():
            task.result()
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def test_previews_in_a_thread_the_bot_may_not_read_are_finished_through_its_webhook() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        story = fake.add_thread(guild, general, "story")
        fake.deny_bot(general, Permission.READ_MESSAGE_HISTORY)  # the thread takes it too
        async with connected(fake) as client:
            thread = client.get_channel(int(story["id"]))
            assert isinstance(thread, discord.Thread)
            header = f"{REPLY_QUOTE_PREFIX} **alice** tell me a story"
            dead = WebhookPool()  # the bot that died streaming the answer
            none = discord.AllowedMentions.none()
            previews = [
                await dead.send(thread, text, username="Lilith", avatar_url=None, mentions=none)
                for text in (f"{header}\nOnce upon", "a time")
            ]
            unfinished = gw.UnfinishedAnswer(
                job_id="job-1",
                personality=common.Personality(display_name="Lilith"),
                preview_message_ids=[str(p.id) for p in previews],
                content="Once upon a time, the whole story.",
            )
            ids = await finish_unfinished(WebhookPool(), thread, unfinished)

        assert ids == [previews[0].id]  # finished in place, not posted anew beside it
        (shown,) = fake.webhook_messages(story)
        assert shown.content == f"{header}\nOnce upon a time, the whole story."
        assert fake.refusals == [("get_message", 403, 50013)] * 2  # the channel's reads
