"""A status line's edit rate limited, through the real webhook pool and discord.py against the
fake Discord.

Discord's 429 carries `Via` (its edge), and discord.py's webhook adapter then sleeps the body's
`retry_after` and sends the edit again, up to five times (discord/webhook/async_.py): the bot
never sees that 429 and the line lands, once the limit allows. A 429 without `Via` (what
discord.py takes for Cloudflare's ban) is handed over at once: the stream then holds every
request, its final edit included, for the `Retry-After` asked.
"""

import time

import aiohttp
import discord

from tests.unit.bot.test_unfinished_on_discord import connected
from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.webhooks import WebhookPool
from tzurot.testing.fake_discord import FakeDiscord

LINE = "-# ⏳ Interrupted by a restart; picking the answer up again…"


def streamed(
    pool: WebhookPool, channel: discord.TextChannel, limited: list[float]
) -> StreamedAnswer:
    mentions = discord.AllowedMentions.none()

    async def send(text: str) -> int:
        sent = await pool.send(channel, text, username="Lilith", avatar_url=None, mentions=mentions)
        return sent.id

    async def edit(message_id: int, text: str) -> None:
        await pool.edit(channel, message_id, text, mentions=mentions)

    async def delete(message_id: int) -> None:
        await pool.delete(channel, message_id)

    return StreamedAnswer(send, edit, delete, interval=0.0, on_limited=limited.append)


async def read_through_webhook(fake: FakeDiscord, hook_id: int | None, message_id: int) -> None:
    """A request discord.py does not see, counted in the webhook's bucket (another client)."""
    assert hook_id is not None
    hook = fake.webhooks[hook_id]
    url = f"{fake.api_base}/webhooks/{hook_id}/{hook['token']}/messages/{message_id}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200


async def test_discord_py_waits_out_a_429_on_the_status_line_edit() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        fake.webhook_rate = (2, 1.5)
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            limited: list[float] = []
            stream = streamed(WebhookPool(), channel, limited)
            await stream.update("Once upon")
            (shown,) = fake.webhook_messages(general)
            await read_through_webhook(fake, shown.webhook_id, shown.id)  # the bucket is full
            began = time.monotonic()
            assert await stream.show_status(LINE)
            waited = time.monotonic() - began
            with_line = shown.content
            assert await stream.finish("Once upon a time.") == [shown.id]

        assert with_line == f"Once upon\n{LINE}"
        assert shown.content == "Once upon a time."
        assert waited >= 1.0  # slept the retry_after discord.py was given, then sent again
        assert limited == []  # discord.py took the 429: the stream never saw one
        assert [route for route, _ in fake.rate_limited] == ["edit_webhook_message"]  # once
        assert shown.edits == [with_line, "Once upon a time."]


async def test_a_429_discord_py_hands_over_holds_the_stream_for_its_retry_after() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            limited: list[float] = []
            stream = streamed(WebhookPool(), channel, limited)
            await stream.update("Once upon")
            (shown,) = fake.webhook_messages(general)
            body = {"message": "You are being rate limited.", "retry_after": 1.0, "global": False}
            fake.fail_next("edit_webhook_message", 429, body)  # no Via: handed over at once
            began = time.monotonic()
            assert not await stream.show_status(LINE)
            await stream.update("Once upon a")  # held: not sent
            edits_while_held = list(shown.edits)
            assert await stream.finish("Once upon a time.") == [shown.id]
            waited = time.monotonic() - began

        assert limited == [1.0]
        assert edits_while_held == []
        assert shown.edits == ["Once upon a time."]
        assert waited >= 1.0
