"""`/personality delete` through the fake Discord, the real bot and the whole mesh on one real
Postgres: its owner types `confirm: DELETE` and the personality is gone, with everything memory
kept of it (every table, as test_discord_personality_forget counts them); it answers no more and
is listed nowhere, and nothing speaks as it: a reply to one of its old answers is addressed as if
it replied to nothing (another personality it mentions answers, or the channel's activated one),
exactly as a reply to someone else's private personality. Her double click deletes it once:
the second `confirm: DELETE`, while the first is recording the deletion, is told another
request is deleting it. Any other `confirm` deletes nothing and says what would be lost.
Another user is refused by the gateway, and someone else's private personality reads as not
found, word for word as one that does not exist. A gateway that cannot be reached is told
apart: before the deletion nothing was deleted; during it, the reply says to ask again, which
finishes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
    settled,
    slash_text,
)
from tzurot.testing.fake_discord import FakeInteraction, Json, Posted
from tzurot.testing.memory_rows import PERSONALITY_ROWS, formed, rows_of, scalar
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def personality_id(world: World, slug: str) -> str | None:
    found = await scalar(world, "SELECT id::text FROM core.personalities WHERE slug = :s", s=slug)
    assert found is None or isinstance(found, str)
    return found


def channel_log(world: World) -> list[Posted]:
    """Everything posted in #general (deleted messages too), oldest first."""
    return list(world.discord.messages.get(int(world.general["id"]), []))


def posted_by_us(world: World, *, since: int) -> list[Posted]:
    """What the bot posted in #general after its first `since` messages: as a personality
    (a webhook) or as itself."""
    bot = str(world.discord.bot_user["id"])
    return [m for m in channel_log(world)[since:] if m.webhook_id or m.data["author"]["id"] == bot]


async def chat(world: World, user: Json, slug: str, text: str) -> None:
    said = await world.discord.say(world.general, user, f"@{slug} {text}")
    await world.delivered(f"{said.id}:{slug}")


async def create(world: World, user: Json, name: str, *, public: bool = False) -> None:
    created = await slash_text(
        world, user, "character", "create",
        name=name, system_prompt=f"You are {name}.", public=public,
    )  # fmt: skip
    assert f"Created **{name}**" in created


async def delete(world: World, user: Json, personality: str, confirm: str) -> FakeInteraction:
    """`/personality delete`, once its answer is there."""
    done = await world.discord.slash(
        world.general,
        user,
        "personality",
        {"personality": personality, "confirm": confirm},
        subcommand=["delete"],
    )
    await world.discord.wait_until(lambda: any(done.texts()), within=60)
    return done


def text_of(done: FakeInteraction) -> str:
    return "".join(done.texts())


async def suggested(world: World, user: Json, typed: str) -> list[Json]:
    """What `/personality delete`'s autocomplete offers `user` for `typed`."""
    asked = await world.discord.slash(
        world.general,
        user,
        "personality",
        {"personality": typed},
        subcommand=["delete"],
        focused="personality",
    )
    await world.discord.wait_until(lambda: any(r.get("type") == 8 for r in asked.responses))
    return asked.choices()


async def test_her_personality_is_deleted_once_she_types_delete_and_nothing_of_it_is_left(
    world: World,
) -> None:
    await world.memory_ready()
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        await create(world, world.alice, "Wren")
        # Only her own are offered, chosen by slug; not Lilith, public but not hers.
        assert await suggested(world, world.alice, "") == [{"name": "Wren", "value": "wren"}]
        await chat(world, world.alice, "wren", "my cat is called Pixel and she is grey")
        await chat(world, world.alice, "wren", "what colour is my cat Pixel?")
        await chat(world, world.alice, "lilith", "I sail a small boat called Kestrel")
        wren, lilith = await personality_id(world, "wren"), await personality_id(world, "lilith")
        assert wren is not None
        assert lilith is not None
        await formed(world, wren, lilith)
        before = await rows_of(world, wren)
        assert before["memory.turns"], before
        assert before["memory.memories"], before
        kept = await rows_of(world, lilith)
        (old_answer, *_) = world.discord.webhook_messages(world.general)
        assert old_answer.author_name == "Wren"

        deleted = await delete(world, world.alice, "wren", "DELETE")

        assert deleted.is_ephemeral()
        assert text_of(deleted).startswith("Deleted **Wren** (`wren`) for good")
        assert await personality_id(world, "wren") is None
        # It answers no more and nothing speaks as it: its name reaches nobody, a reply to
        # its old answer addresses nobody, and a 🔄 on that answer regenerates nothing and
        # leaves it; no model is asked, nothing is posted (as Wren or by the bot).
        before_gone = len(channel_log(world))
        asked = len(world.provider.chat_requests())
        await world.discord.say(world.general, world.alice, "@Wren are you still there?")
        await world.discord.say(world.general, world.alice, "hello?", reply_to=old_answer)
        await world.discord.react(old_answer, world.alice, "🔄")
        await settled(world, bot)
        assert posted_by_us(world, since=before_gone) == []
        assert not old_answer.deleted
        assert len(world.provider.chat_requests()) == asked
        # Listed nowhere, offered nowhere.
        mine = await slash_text(world, world.alice, "character", "browse", mine=True)
        assert mine == "No personalities to show."
        assert await suggested(world, world.alice, "wr") == []
        again = await delete(world, world.alice, "wren", "DELETE")
        assert text_of(again) == "Nothing deleted: no personality named 'wren'."

    assert await rows_of(world, wren) == dict.fromkeys(PERSONALITY_ROWS, 0)
    assert await rows_of(world, lilith) == kept


@asynccontextmanager
async def row_held(world: World, personality: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The personality's row held for the block as an edit of it holds it (FOR NO KEY UPDATE,
    in a transaction of its own); yields what waits until another session waits for it. A
    deletion waits so when it records itself (admin/deletions.py), its locks held."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                sa.text(
                    "SELECT 1 FROM core.personalities WHERE id = CAST(:p AS uuid) FOR NO KEY UPDATE"
                ),
                {"p": personality},
            )

            async def waited_on() -> None:
                waiting = sa.text(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                )
                for _ in range(1200):
                    if await conn.scalar(waiting):
                        return
                    await asyncio.sleep(0.05)
                raise TimeoutError("nothing waited for the personality's row")

            yield waited_on
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_a_double_click_deletes_it_once_and_tells_the_second_click_so(
    world: World,
) -> None:
    """Her two `confirm: DELETE`s at once: the first deletes it, held while it records the
    deletion (its locks taken, the row waiting); the second, meanwhile, is told another request
    is deleting it and does nothing (DELETION_IN_PROGRESS). Then the first finishes and says
    so, and nothing of it is left, exactly as after one deletion."""
    await world.memory_ready()
    await world.set_key(world.alice)
    async with running_bot(world):
        await create(world, world.alice, "Dunlin")
        await chat(world, world.alice, "dunlin", "my dog is called Biscuit and he is brown")
        dunlin = await personality_id(world, "dunlin")
        lilith = await personality_id(world, "lilith")
        assert dunlin is not None
        assert lilith is not None
        await formed(world, dunlin)
        before = await rows_of(world, dunlin)
        assert before["memory.turns"], before
        assert before["memory.memories"], before
        kept = await rows_of(world, lilith)

        async with row_held(world, dunlin) as waited_on:
            first = await world.discord.slash(
                world.general,
                world.alice,
                "personality",
                {"personality": "dunlin", "confirm": "DELETE"},
                subcommand=["delete"],
            )
            await waited_on()  # the first is recording its deletion, its locks held
            second = await delete(world, world.alice, "dunlin", "DELETE")
            first_meanwhile = text_of(first)
        await world.discord.wait_until(lambda: any(first.texts()), within=60)
        mine = await slash_text(world, world.alice, "character", "browse", mine=True)
        again = await delete(world, world.alice, "dunlin", "DELETE")

    assert first_meanwhile == ""  # still deleting when the second was answered
    assert first.is_ephemeral()
    assert second.is_ephemeral()
    assert text_of(first).startswith("Deleted **Dunlin** (`dunlin`) for good")
    assert text_of(second) == (
        "Nothing done by this request: **Dunlin** (`dunlin`) is being deleted by another one "
        "right now. If it still shows in `/character browse` in a minute, run "
        "`/personality delete` with `confirm: DELETE` again."
    )
    assert mine == "No personalities to show."
    assert text_of(again) == "Nothing deleted: no personality named 'dunlin'."
    assert await personality_id(world, "dunlin") is None
    assert await rows_of(world, dunlin) == dict.fromkeys(PERSONALITY_ROWS, 0)
    assert await rows_of(world, lilith) == kept


async def activate(world: World, slug: str) -> None:
    """`slug` answers every message in #general that addresses no one else."""
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=member_actor(world.alice),
            location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
            personality=slug,
            manage_channels=True,
        )
    )


async def test_a_reply_to_a_deleted_personalitys_answer_is_addressed_as_if_to_nothing(
    world: World,
) -> None:
    """Before and after a restart (the bot remembers the answer, then only the job that posted
    it): a personality the reply mentions answers, and the channel's activated one answers a
    reply that mentions no one; nothing is posted as the deleted one."""
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        await create(world, world.alice, "Linnet")
        await chat(world, world.alice, "linnet", "remember the tide tables")
        (old_answer,) = world.discord.webhook_messages(world.general)
        assert text_of(await delete(world, world.alice, "linnet", "DELETE")).startswith(
            "Deleted **Linnet**"
        )
        mentioned = await world.discord.say(
            world.general, world.alice, "@Lilith what did it say?", reply_to=old_answer
        )
        await world.delivered(f"{mentioned.id}:lilith")
        await activate(world, "lilith")
        replied = await world.discord.say(world.general, world.alice, "hello?", reply_to=old_answer)
        await world.delivered(f"{replied.id}:lilith")
        await settled(world, bot)
    async with running_bot(world) as bot:
        again = await world.discord.say(world.general, world.alice, "anyone?", reply_to=old_answer)
        await world.delivered(f"{again.id}:lilith")
        await settled(world, bot)

    answers = world.discord.webhook_messages(world.general)
    assert [a.author_name for a in answers] == ["Linnet", "Lilith", "Lilith", "Lilith"]
    assert not any("no personality named" in a.content for a in answers)


async def test_a_reply_to_her_private_personality_reads_to_him_as_one_to_a_deleted_one(
    world: World,
) -> None:
    """Bob replying to the answer of Alice's private personality gets what a reply to a
    deleted one gets: nothing, no model asked, not a word of it; her own reply is answered."""
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        await create(world, world.alice, "Siskin")
        await chat(world, world.alice, "siskin", "I collect sea glass")
        (answer,) = world.discord.webhook_messages(world.general)
        before = len(channel_log(world))
        asked = len(world.provider.chat_requests())
        await world.discord.say(world.general, world.bob, "who are you?", reply_to=answer)
        await settled(world, bot)
        assert posted_by_us(world, since=before) == []
        assert len(world.provider.chat_requests()) == asked
        hers = await world.discord.say(world.general, world.alice, "still here?", reply_to=answer)
        await world.delivered(f"{hers.id}:siskin")

    assert [a.author_name for a in world.discord.webhook_messages(world.general)] == [
        "Siskin",
        "Siskin",
    ]


async def test_any_other_confirm_deletes_nothing_and_says_what_would_be_lost(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        await create(world, world.alice, "Finch")
        await chat(world, world.alice, "finch", "I keep bees")
        finch = await personality_id(world, "finch")
        assert finch is not None
        before = await rows_of(world, finch)
        assert before["memory.turns"] == 2

        for confirm in ("no", "delete", "Finch"):
            kept = await delete(world, world.alice, "Finch", confirm)
            assert kept.is_ephemeral()
            text = text_of(kept)
            assert text.startswith("**Nothing deleted yet.** Deleting **Finch** (`finch`)")
            assert "cannot be undone" in text
            assert "long-term memories" in text
            assert "`confirm: DELETE`" in text
        # Nothing waits for a later answer either: it is there and still answers.
        await chat(world, world.alice, "finch", "do you remember my bees?")

    assert await personality_id(world, "finch") == finch
    assert (await rows_of(world, finch))["memory.turns"] == before["memory.turns"] + 2


async def test_another_user_is_refused_and_her_private_one_reads_as_not_found(
    world: World,
) -> None:
    await world.set_key(world.bob)
    async with running_bot(world):
        await create(world, world.alice, "Heron", public=True)
        await create(world, world.alice, "Kestrel")
        await chat(world, world.bob, "heron", "I grow tomatoes on my balcony")
        heron, kestrel = (
            await personality_id(world, "heron"),
            await personality_id(world, "kestrel"),
        )
        assert heron is not None
        assert kestrel is not None
        await formed(world, heron)  # formation settled: its rows no longer move by themselves
        heron_rows = await rows_of(world, heron)
        assert heron_rows["memory.turns"] == 2

        refused = await delete(world, world.bob, "heron", "DELETE")
        hidden = await delete(world, world.bob, "Kestrel", "DELETE")
        hidden_unconfirmed = await delete(world, world.bob, "Kestrel", "no")
        missing = await delete(world, world.bob, "Plover", "DELETE")
        offered = await suggested(world, world.bob, "")

    assert refused.is_ephemeral()
    assert hidden.is_ephemeral()
    assert text_of(refused) == (
        "Nothing deleted: **Heron** is not yours; only its owner or a superuser can."
    )
    # Her private one is as absent as one that never was: no warning, no owner, no hint.
    assert text_of(missing) == "Nothing deleted: no personality named 'Plover'."
    assert text_of(hidden) == text_of(missing).replace("Plover", "Kestrel")
    assert text_of(hidden_unconfirmed) == text_of(hidden)
    assert offered == []  # neither is his
    assert await personality_id(world, "heron") == heron
    assert await personality_id(world, "kestrel") == kestrel
    assert await rows_of(world, heron) == heron_rows


class FlakyGateway(RecordingGateway):
    """The real gateway, unreachable for GetPersonality while `down`, and for the first
    `failing_deletes` DeletePersonality calls (cut before they reach it)."""

    def __init__(self, upstream: Any) -> None:
        super().__init__(upstream)
        self.down = False
        self.failing_deletes = 0

    async def GetPersonality(self, request: gw.GetPersonalityRequest, context: Any) -> Any:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection refused")
        return await super().GetPersonality(request, context)

    async def DeletePersonality(self, request: gw.DeletePersonalityRequest, context: Any) -> Any:
        if self.failing_deletes:
            self.failing_deletes -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return await self.upstream.DeletePersonality(request)


async def test_an_unreachable_gateway_says_whether_anything_was_deleted(world: World) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(display_name="Gull", system_prompt="You are Gull."),
        )
    )
    gull = await personality_id(world, "gull")
    async with (
        recording_gateway(world, FlakyGateway) as (flaky, client),
        running_bot(world, gateway=client),
    ):
        assert isinstance(flaky, FlakyGateway)
        flaky.down = True
        unreachable = await delete(world, world.alice, "gull", "DELETE")
        flaky.down, flaky.failing_deletes = False, 1
        cut = await delete(world, world.alice, "gull", "DELETE")
        still = await personality_id(world, "gull")
        finished = await delete(world, world.alice, "gull", "DELETE")

    assert unreachable.is_ephemeral()
    assert text_of(unreachable) == (
        "Nothing deleted: Tzurot cannot be reached right now; try again in a moment."
    )
    assert text_of(cut).startswith(
        "**Gull** (`gull`) may be only partly deleted: a service Tzurot needs is unavailable"
    )
    assert "run `/personality delete` with `confirm: DELETE` again" in text_of(cut)
    assert still == gull
    assert text_of(finished).startswith("Deleted **Gull** (`gull`) for good")
    assert await personality_id(world, "gull") is None
