"""A user session in Discord: the fake Discord, the real bot, the whole mesh behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, running_bot
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 10.0) -> T:
    for _ in range(int(within / 0.05)):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError("condition never held")


async def delivered_job(world: World, key: str) -> gw.Job:
    async def probe() -> gw.Job | None:
        try:
            reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:  # the bot has not sent it yet
                return None
            raise
        return reply.job if reply.job.status == common.JOB_STATUS_DELIVERED else None

    return await eventually(probe)


async def test_at_lilith_hi_is_answered_by_a_webhook_message_from_lilith(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "Hello, mortal."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hi")
        answers = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
        job = await delivered_job(world, f"{said.id}:lilith")
    (answer,) = answers
    assert answer.author_name == "Lilith"
    assert answer.avatar_url == "https://example.com/lilith.png"
    assert answer.content.endswith("Hello, mortal.")
    # Webhooks cannot reply natively: the first line quotes the user's message with a link.
    quote = answer.content.split("\n")[0]
    assert "alice" in quote.lower()
    assert str(said.id) in quote
    call = world.provider.chat_requests()[-1]
    assert call.api_key == USER_KEY
    assert call.body["messages"][-1]["content"].endswith("hi")
    assert "@Lilith" not in call.body["messages"][-1]["content"]
    assert int(world.general["id"]) in world.discord.typing
    # ConfirmDelivery carried the posted message id.
    assert job.content == "Hello, mortal."


async def test_an_alias_and_a_multi_word_alias_address_lilith(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "yes?"
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@LIL are you there")
        await world.discord.say(world.general, world.alice, "hey @the Night Queen, sing")
        answers = await world.discord.wait_until(
            lambda: (
                len(world.discord.webhook_messages(world.general)) == 2
                and world.discord.webhook_messages(world.general)
            )
        )
    assert [a.author_name for a in answers] == ["Lilith", "Lilith"]
    # Every request, not the last two: the second "yes?" can repeat the first answer once that
    # is in history, and inference's repeat guard then asks the provider again.
    contents = [c.body["messages"][-1]["content"] for c in world.provider.chat_requests()]
    assert any(c.endswith("are you there") for c in contents)
    assert any(c.endswith("hey sing") or c.endswith("hey , sing") for c in contents)


async def test_two_personalities_in_one_message_answer_in_order_of_mention(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = lambda body: f"I am {body['model'].split('/')[-1]}"
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Sage and @Lilith: who are you?"
        )
        await delivered_job(world, f"{said.id}:lilith")
        answers = world.discord.webhook_messages(world.general)
    assert [a.author_name for a in answers] == ["Sage", "Lilith"]
    assert answers[0].content.endswith("I am sage")
    assert answers[1].content.endswith("I am lilith")


async def test_a_connection_dropped_on_one_answer_leaves_the_next_addressee_answered(
    world: World,
) -> None:
    """Discord's connection drops as Sage's answer is posted (no refusal: no answer at
    all). The handler goes on: Lilith, mentioned in the same message, still answers."""
    await world.set_key(world.alice)
    world.provider.reply = lambda body: f"I am {body['model'].split('/')[-1]}"
    world.discord.drop_next("execute_webhook")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Sage and @Lilith: who are you?"
        )
        await delivered_job(world, f"{said.id}:lilith")
        answers = world.discord.webhook_messages(world.general)
    assert [a.author_name for a in answers] == ["Lilith"]
    assert answers[0].content.endswith("I am lilith")


async def test_a_reply_to_lilith_continues_the_conversation(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith my name is Alice")
        # Delivered (ConfirmDelivery stored the exchange), not only posted: the reply may
        # follow the post faster than the confirmation, and then history has not got it yet.
        await delivered_job(world, f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        await world.discord.say(world.general, world.alice, "what is my name?", reply_to=first)
        answers = await world.discord.wait_until(
            lambda: (
                len(world.discord.webhook_messages(world.general)) == 2
                and world.discord.webhook_messages(world.general)
            )
        )
    assert answers[1].author_name == "Lilith"
    prompt = world.provider.chat_requests()[-1].body["messages"]
    # The stored first exchange (ConfirmDelivery put it in history) is in the second prompt.
    assert any(m["role"] == "assistant" and "my name is Alice" in m["content"] for m in prompt)
    assert prompt[-1]["content"].endswith("what is my name?")


async def test_discord_notices_are_not_answered(world: World) -> None:
    """Pinning an answer posts a notice (type 6) that references it, as a reply does; a new
    thread's notice (type 18) carries the thread's name. Neither is someone talking: only
    the real reply after them is answered."""
    await world.set_key(world.alice)
    before = len(world.provider.chat_requests())  # the world is shared by the module's tests
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith my name is Alice")
        (first,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
        pinned = {
            "type": 6,
            "message_reference": {
                "message_id": str(first.id),
                "channel_id": world.general["id"],
                "guild_id": world.guild["id"],
            },
        }
        await world.discord.say(world.general, world.alice, "", extra=pinned)
        await world.discord.say(world.general, world.alice, "@Lilith lore", extra={"type": 18})
        said = await world.discord.say(world.general, world.alice, "and now?", reply_to=first)
        await delivered_job(world, f"{said.id}:lilith")
        await asyncio.sleep(0.5)  # a notice's answer, had there been one, would be posted
    assert len(world.discord.webhook_messages(world.general)) == 2
    asked = [c.body["messages"][-1]["content"] for c in world.provider.chat_requests()[before:]]
    assert len(asked) == 2
    assert asked[-1].endswith("and now?")


async def test_a_display_name_with_markdown_is_quoted_as_text(world: World) -> None:
    """The quote line on top of an answer carries the user's display name: a ``` in it
    would open a code block that the answer's own fences then close."""
    mallory = world.discord.make_user("mallory")
    mallory["global_name"] = "Mal```s **bold"
    await world.set_key(mallory)
    world.provider.reply = "Here:\n```python\nprint('hi')\n```\nDone."
    async with running_bot(world):
        await world.discord.say(world.general, mallory, "@Lilith show me code")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    quote, *body = answer.content.split("\n")
    assert "```" not in quote.replace("\\`", "")
    assert "Mal\\`\\`\\`s \\*\\*bold" in quote
    assert "\n".join(body) == "Here:\n```python\nprint('hi')\n```\nDone."


async def test_a_5000_character_answer_arrives_as_three_messages(world: World) -> None:
    await world.set_key(world.alice)
    paragraph = ("word " * 199 + "end.").strip()
    world.provider.reply = "\n\n".join([paragraph] * 5)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a lot")
        job = await delivered_job(world, f"{said.id}:lilith")
    answers = world.discord.webhook_messages(world.general)
    assert len(answers) == 3
    assert job.content == world.provider.reply
    assert all(len(a.content) <= 2000 for a in answers)
    assert all(a.author_name == "Lilith" for a in answers)
    assert all(a.content.endswith("end.") for a in answers)
    assert len(job.content) > 4000


async def test_a_streamed_answer_is_edited_as_chunks_arrive_then_finalised(world: World) -> None:
    await world.set_key(world.alice)
    words = [f"w{i}" for i in range(30)]
    world.provider.reply = " ".join(words)
    world.provider.chunk_delay = 0.15  # 4.5 s of streaming, at the production cadence
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith count slowly")
        (answer,) = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if m.content.endswith("w29")
            ]
        )
    assert len(answer.edits) >= 2  # shown while streaming, at a bounded rate
    assert len(answer.edits) < 30
    assert answer.content.endswith(" ".join(words))


async def test_a_duplicate_message_create_gives_one_answer(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith once only")
        await world.discord.dispatch_message(said)
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        await world.discord.say(world.general, world.alice, "@Sage a later message")
        await world.discord.wait_until(
            lambda: any(
                m.author_name == "Sage" for m in world.discord.webhook_messages(world.general)
            )
        )
    names = [m.author_name for m in world.discord.webhook_messages(world.general)]
    assert names == ["Lilith", "Sage"]


async def test_without_a_key_the_answer_is_lilith_s_error_message_and_how_to_add_one(
    world: World,
) -> None:
    async with running_bot(world):
        await world.discord.say(world.general, world.bob, "@Lilith hi")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    assert answer.author_name == "Lilith"
    assert "*Lilith's candle gutters.*" in answer.content
    assert "/wallet set openrouter" in answer.content


async def test_bots_and_its_own_webhooks_are_ignored(world: World) -> None:
    await world.set_key(world.alice)
    robot = world.discord.make_user("robot", bot=True)
    async with running_bot(world):
        await world.discord.say(world.general, robot, "@Lilith hi from a bot")
        await world.discord.say(world.general, world.alice, "@Lilith hi from alice")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        # Lilith's own answer also came back as a MESSAGE_CREATE: it must not be answered.
        await world.discord.say(world.general, world.alice, "@Sage marker")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) >= 2
        )
    names = [m.author_name for m in world.discord.webhook_messages(world.general)]
    assert names == ["Lilith", "Sage"]


async def test_messages_in_a_thread_are_answered_in_the_thread(world: World) -> None:
    await world.set_key(world.alice)
    thread = world.discord.add_thread(world.guild, world.general, "side chat")
    async with running_bot(world):
        await world.discord.say(thread, world.alice, "@Lilith in a thread")
        (answer,) = await world.discord.wait_until(lambda: world.discord.webhook_messages(thread))
    assert answer.author_name == "Lilith"
    assert world.discord.webhook_messages(world.general) == []
    assert [int(h["channel_id"]) for h in world.discord.webhooks.values()].count(
        int(world.general["id"])
    ) == 1


async def test_an_activated_channel_answers_without_a_mention(world: World) -> None:
    await world.set_key(world.alice)
    location = common.Location(guild_id=world.guild["id"], channel_id=world.general["id"])
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=common.Actor(user_id=world.alice["id"]),
            location=location,
            personality="lilith",
            manage_channels=True,
        )
    )
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "no mention here")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    assert answer.author_name == "Lilith"
