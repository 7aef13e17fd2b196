"""🔄 again and again through the fake Discord: each reaction makes a new answer, history keeps
exactly one exchange, and reactions by someone other than the user answered do nothing.

🔄 on the answer of a personality the gateway no longer finds for the user (deleted, or
someone else's private one now) leaves the answer where it is and posts nothing, alike; so does
a deletion landing between the bot's check and the new generation. A regeneration refused
(the user's key removed) leaves the old answer posted and in history: the old answer goes, from
Discord and from history, only once the new one is delivered."""

from __future__ import annotations

import pytest

from tzurot.bot.gateway_client import GatewayClient
from tzurot.testing.discord_e2e import World, member_actor, running_bot, settled, slash_text
from tzurot.testing.fake_discord import Json, Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e


async def test_regenerate_again_and_again_keeps_one_exchange(world: World) -> None:
    await world.set_key(world.alice)
    replies = iter(["first take", "second take", "third take", "noted"])
    world.provider.reply = lambda body: next(replies)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a riddle")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        # Not Bob's answer: neither reaction does anything.
        await world.discord.react(first, world.bob, "❌")
        await world.discord.react(first, world.bob, "🔄")
        await settled(world, bot)
        untouched = not first.deleted, len(world.provider.chat_requests())
        await world.discord.react(first, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
        second = world.discord.webhook_messages(world.general)[-1]
        await world.discord.react(second, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 2)
        third = world.discord.webhook_messages(world.general)[-1]
        follow = await world.discord.say(world.general, world.alice, "@Lilith and the answer?")
        await world.delivered(f"{follow.id}:lilith")
        assert bot.flow is not None
        await bot.flow.idle(30)
    assert untouched == (True, 1)  # after Bob's reactions: still there, nothing paid
    assert first.content.endswith("first take")
    assert first.deleted
    assert second.content.endswith("second take")
    assert second.deleted
    assert third.content.endswith("third take")
    assert not third.deleted
    requests = world.provider.chat_requests()
    assert len(requests) == 4  # the answer, two regenerations, the follow-up: Bob's did nothing
    history = [
        (m["role"], str(m["content"]))
        for m in requests[-1].body["messages"][:-1]
        if m["role"] in {"user", "assistant"}
    ]
    assert [role for role, _ in history] == ["user", "assistant"]
    assert history[0][1].endswith("tell me a riddle")
    assert history[1][1] == "third take"


async def test_a_refused_regeneration_leaves_the_answer_posted_and_remembered(
    world: World,
) -> None:
    """Alice removes her key, then asks for another answer: refused (no key), told so, and
    the first answer is still posted; her next message (with a key again) is answered with it
    in the conversation, as she still sees it."""
    await world.set_key(world.alice)
    replies = iter(["first take", "the answer is a candle"])
    world.provider.reply = lambda body: next(replies)
    before = len(world.provider.chat_requests())  # the module's mesh served other tests
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a riddle")
        await world.delivered(f"{said.id}:lilith")
        (first,) = world.discord.webhook_messages(world.general)
        removed = await slash_text(world, world.alice, "wallet", "remove", provider="openrouter")
        assert "Removed your openrouter key" in removed

        await world.discord.react(first, world.alice, "🔄")
        refusal = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if "/wallet set" in m.content
            ]
        )
        await settled(world, bot)
        still_posted = not first.deleted

        await world.set_key(world.alice)
        follow = await world.discord.say(world.general, world.alice, "@Lilith and the answer?")
        await world.delivered(f"{follow.id}:lilith")
        assert bot.flow is not None
        await bot.flow.idle(30)

    assert "You have no API key for openrouter" in refusal[0].content
    assert still_posted
    assert not first.deleted
    requests = world.provider.chat_requests()[before:]
    assert len(requests) == 2  # the answer and the follow-up: the refused one asked nothing
    conversation = [
        (m["role"], str(m["content"]))
        for m in requests[-1].body["messages"]
        if m["role"] in {"user", "assistant"}
    ]
    assert [role for role, _ in conversation] == ["user", "assistant", "user"]
    assert conversation[0][1].endswith("tell me a riddle")
    assert conversation[1][1] == "first take"  # still in history, as it is still posted
    assert conversation[2][1].endswith("and the answer?")


async def create(world: World, owner: Json, name: str, *, public: bool) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(owner),
            personality=common.Personality(
                display_name=name, system_prompt=f"You are {name}.", public=public
            ),
        )
    )


async def delete(world: World, owner: Json, slug: str) -> None:
    await world.cli.DeletePersonality(
        gw.DeletePersonalityRequest(actor=member_actor(owner), personality=slug)
    )


async def answered(world: World, user: Json, slug: str) -> Posted:
    """`user` says something to `slug`; its answer, once delivered."""
    said = await world.discord.say(world.general, user, f"@{slug} tell me a riddle")
    await world.delivered(f"{said.id}:{slug}")
    return world.discord.webhook_messages(world.general)[-1]


def posted_since(world: World, count: int) -> list[Posted]:
    """What the bot posted in #general (as a personality or as itself) after its first
    `count` messages, deleted ones included."""
    bot = str(world.discord.bot_user["id"])
    posted = world.discord.messages.get(int(world.general["id"]), [])[count:]
    return [m for m in posted if m.webhook_id or m.data["author"]["id"] == bot]


def channel_size(world: World) -> int:
    return len(world.discord.messages.get(int(world.general["id"]), []))


async def test_regenerating_a_deleted_personalitys_answer_leaves_it_and_posts_nothing(
    world: World,
) -> None:
    """Whether the bot still remembers the answer or (after a restart) finds it through its
    job: the answer stays, nothing is posted as the deleted personality or by the bot, no
    model is asked."""
    await world.set_key(world.alice)
    await create(world, world.alice, "Dunlin", public=False)
    async with running_bot(world) as bot:
        answer = await answered(world, world.alice, "dunlin")
        await delete(world, world.alice, "dunlin")
        count, asked = channel_size(world), len(world.provider.chat_requests())
        await world.discord.react(answer, world.alice, "🔄")
        await settled(world, bot)
    async with running_bot(world) as bot:
        await world.discord.react(answer, world.alice, "🔄")
        await settled(world, bot)

    assert not answer.deleted
    assert posted_since(world, count) == []
    assert len(world.provider.chat_requests()) == asked


async def test_regenerating_an_answer_of_a_personality_made_private_reads_as_deleted(
    world: World,
) -> None:
    """Bob's answer from Alice's personality, which she has made private since: his 🔄 gets
    what a 🔄 on a deleted one's answer gets (the answer left, nothing posted, no model
    asked), before and after a restart; nothing tells him it still exists."""
    await world.set_key(world.bob)
    await create(world, world.alice, "Tern", public=True)
    async with running_bot(world) as bot:
        answer = await answered(world, world.bob, "tern")
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                actor=member_actor(world.alice),
                personality=common.Personality(slug="tern", public=False),
                update_paths=["public"],
            )
        )
        count, asked = channel_size(world), len(world.provider.chat_requests())
        await world.discord.react(answer, world.bob, "🔄")
        await settled(world, bot)
    async with running_bot(world) as bot:
        await world.discord.react(answer, world.bob, "🔄")
        await settled(world, bot)

    assert not answer.deleted
    assert posted_since(world, count) == []
    assert len(world.provider.chat_requests()) == asked


class DeletedAfterTheCheck(GatewayClient):
    """The bot's client, with the personality `doomed` names deleted by its owner just after
    GetPersonality found it: the race between 🔄's check and its new generation."""

    doomed: tuple[Json, str] | None = None

    async def personality(self, actor: common.Actor, name: str) -> common.Personality | None:
        found = await super().personality(actor, name)
        if found is not None and self.doomed is not None and found.slug == self.doomed[1]:
            owner, slug = self.doomed
            self.doomed = None
            await self.call(
                self.stub.DeletePersonality(
                    gw.DeletePersonalityRequest(actor=member_actor(owner), personality=slug)
                )
            )
        return found


async def test_a_deletion_landing_after_the_check_still_leaves_the_answer(world: World) -> None:
    await world.set_key(world.alice)
    await create(world, world.alice, "Curlew", public=False)
    client = DeletedAfterTheCheck(
        gw_grpc.GatewayServiceStub(await world.mesh.channel("bot")), generate_timeout=60
    )
    async with running_bot(world, gateway=client) as bot:
        answer = await answered(world, world.alice, "curlew")
        count, asked = channel_size(world), len(world.provider.chat_requests())
        client.doomed = (world.alice, "curlew")
        await world.discord.react(answer, world.alice, "🔄")
        await settled(world, bot)

    assert client.doomed is None  # the check found it; the deletion landed right after
    assert not answer.deleted
    assert posted_since(world, count) == []
    assert len(world.provider.chat_requests()) == asked
