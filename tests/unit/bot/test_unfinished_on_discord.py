"""A dead bot's half answer finished by the real webhook pool and discord.py, against the fake
Discord: in a thread whose history the bot may not read, its webhook reads the previews it
posted (Get Webhook Message, with the thread's id) and the answer is finished in them. The
webhook deleted (an admin) is looked up again, never made just to read or to edit; previews
that no webhook of the channel's can edit any more are passed over."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from structlog.testing import capture_logs

from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.unfinished import finish_unfinished
from tzurot.bot.webhooks import WebhookPool
from tzurot.testing.fake_discord import FakeDiscord
from tzurot.testing.fake_discord.rules import Permission
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class Client(discord.Client):
    def __init__(self) -> None:
        # Only the guilds: the bot's half answers are read through REST, not gateway events.
        super().__init__(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)

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


NONE = discord.AllowedMentions.none()


async def post(pool: WebhookPool, channel: object, *texts: str) -> list[discord.WebhookMessage]:
    return [
        await pool.send(channel, text, username="Lilith", avatar_url=None, mentions=NONE)
        for text in texts
    ]


@pytest.mark.parametrize("readable", [True, False])
async def test_previews_of_a_webhook_the_pool_does_not_know_yet_are_finished_in_place(
    readable: bool,
) -> None:
    """The finishing bot's pool remembers the channel's webhook of before, since deleted by an
    admin; the dead bot made another and posted the previews through it. Its stale webhook
    answers Unknown Webhook (10015): the pool looks the channel's webhook up again and reads
    and edits through it. Before, the 10015 read as "preview gone" and the whole answer was
    posted anew beside the half answer."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        story = fake.add_thread(guild, general, "story")
        if not readable:
            fake.deny_bot(general, Permission.READ_MESSAGE_HISTORY)
        async with connected(fake) as client:
            thread = client.get_channel(int(story["id"]))
            assert isinstance(thread, discord.Thread)
            ours = WebhookPool()
            (earlier,) = await post(ours, thread, "An answer of before.")
            assert earlier.webhook_id is not None
            fake.delete_webhook(earlier.webhook_id)
            previews = await post(WebhookPool(), thread, "Once upon", "a time")  # the dead bot
            unfinished = gw.UnfinishedAnswer(
                job_id="job-2",
                personality=common.Personality(display_name="Lilith"),
                preview_message_ids=[str(p.id) for p in previews],
                content="Once upon a time, the whole story.",
            )
            ids = await finish_unfinished(ours, thread, unfinished)

        assert ids == [previews[0].id]
        shown = [m.content for m in fake.webhook_messages(story)]
        assert shown == ["An answer of before.", "Once upon a time, the whole story."]


@pytest.mark.parametrize("readable", [True, False])
@pytest.mark.parametrize("others", [0, 15])
async def test_a_withheld_answer_whose_webhook_is_gone_passes_its_previews_over(
    readable: bool, others: int
) -> None:
    """The webhook that posted the previews was deleted: no webhook can edit (or read) them
    any more, and a webhook made now could not either. The withheld answer passes them over
    (logged when the channel's read shows whose they are) and makes no webhook; before, one
    was made to read or edit them (an audit-log entry, one of the channel's 15), and with the
    channel at 15 the WebhookLimitReached escaped, failing the event for ever."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        if not readable:
            fake.deny_bot(general, Permission.READ_MESSAGE_HISTORY)
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            previews = await post(WebhookPool(), channel, "Once upon", "a time")  # the dead bot
            fake.delete_webhook(int(previews[0].webhook_id or 0))
            fake.add_foreign_webhooks(general, others)
            unfinished = gw.UnfinishedAnswer(
                job_id="job-3",
                preview_message_ids=[str(p.id) for p in previews],
                failed_reason="USER_DATA_DELETING",
                failed_message="your data is being deleted, as you asked",
            )
            with capture_logs() as logs:
                ids = await finish_unfinished(WebhookPool(), channel, unfinished)

        assert ids == []
        assert len(fake.webhooks) == others  # none made
        assert [m.content for m in fake.webhook_messages(general)] == ["Once upon", "a time"]
        foreign = [e["message_id"] for e in logs if e["event"] == "bot.unfinished_preview_foreign"]
        assert foreign == ([p.id for p in previews] if readable else [])


@pytest.mark.parametrize("route", ["fetch", "edit", "delete"])
async def test_the_pool_reaches_its_messages_through_the_webhook_looked_up_again(
    route: str,
) -> None:
    """The pool's webhook was deleted and another process of the bot made a new one: reading,
    editing or deleting one of the new one's messages answers Unknown Webhook (10015) through
    the cached one, then is done once more through the webhook looked up (as a send is);
    before, the 10015 escaped."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            pool = WebhookPool()
            (earlier,) = await post(pool, channel, "An answer of before.")
            fake.delete_webhook(int(earlier.webhook_id or 0))
            (theirs,) = await post(WebhookPool(), channel, "Once upon")
            if route == "fetch":
                read = await pool.fetch(channel, theirs.id)
                assert read is not None
                assert read.content == "Once upon"
            elif route == "edit":
                await pool.edit(channel, theirs.id, "Once upon a time", mentions=NONE)
            else:
                await pool.delete(channel, theirs.id)

        shown = [m.content for m in fake.webhook_messages(general)]
        after = {"fetch": ["Once upon"], "edit": ["Once upon a time"], "delete": []}[route]
        assert shown == ["An answer of before.", *after]
        assert len(fake.webhooks) == 1


@pytest.mark.parametrize("others", [0, 15])
async def test_reading_through_the_webhook_never_makes_one(others: int) -> None:
    """A channel without the bot's webhook: a read through it is None (nothing it could
    read); before, a webhook was made to read (every read of it 404s), and at the cap of 15
    WebhookLimitReached escaped."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        fake.add_foreign_webhooks(general, others)
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            read = await WebhookPool().fetch(channel, 1234)

        assert read is None
        assert len(fake.webhooks) == others


async def test_deleting_an_answer_whose_webhook_is_gone_makes_no_webhook() -> None:
    """A 🗑 on an answer of before, after an admin deleted the channel's webhook: no webhook
    is made to try (it could reach none of the deleted one's messages), and nothing fails."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            (earlier,) = await post(WebhookPool(), channel, "An answer of before.")
            fake.delete_webhook(int(earlier.webhook_id or 0))
            assert await WebhookPool().delete(channel, earlier.id) is False  # it still shows

        assert fake.webhooks == {}  # none made
        assert [m.content for m in fake.webhook_messages(general)] == ["An answer of before."]


async def test_an_edit_of_a_deleted_webhooks_message_says_its_webhook_is_gone() -> None:
    """The pool's cached webhook deleted, and another of the bot's made since (another
    replica's send): the edit, tried again through that one, cannot reach the message; what
    the caller is told is Unknown Webhook, not Unknown Message (which reads as the message
    deleted by someone)."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            ours = WebhookPool()
            (answer,) = await post(ours, channel, "Once upon")
            fake.delete_webhook(int(answer.webhook_id or 0))
            await post(WebhookPool(), channel, "another replica's answer")  # makes a new one
            with pytest.raises(discord.NotFound) as refused:
                await ours.edit(
                    channel, answer.id, "Once upon a time", mentions=discord.AllowedMentions.none()
                )

        assert refused.value.code == 10015
