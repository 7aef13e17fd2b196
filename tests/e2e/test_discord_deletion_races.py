"""Alice asks for her data to be deleted while something of hers is still under way, through
the fake Discord, the real bot and the whole mesh on real Postgres:

- a `/wallet set` whose key the provider is still checking: she is told her data is being
  deleted, and no key of hers is left in keyvault (before, the key was saved after her
  deletion had removed her keys: "Saved", and her encrypted key kept for nobody);
- an answer whose bot died while streaming it: its successor shows her, in the very message
  that showed half of it, that it is not answered because her data is being deleted, once,
  and nothing is generated again (before, the half answer stayed as it was, with no word:
  her deletion removed the job, and nothing knew of the message any more); also when the
  answer was her own private personality's, which her deletion deletes (then in no
  personality's voice).

Alice deletes her public personality while Bob's answer from it is half shown, its bot dead:
its successor shows Bob, in that message, that the personality was deleted, in no
personality's voice, and posts nothing else (before, the half answer stayed as it was for
good: the deletion dropped its job and its events).

Alice deletes her public personality while Bob's answer from it streams, its bot alive:
that bot shows Bob, in the message that showed half of it, that the personality was deleted,
word for word as the dead bot's successor does, and posts nothing else; nothing of the answer
reaches history (before, the run lost its deleted job as if another run had taken it over,
JOB_TAKEN_OVER, and the preview read "Something went wrong on our side", in the deleted
personality's voice).

The gateway finishes unfinished answers only an hour after they end here, so only the
deletion's hand-over (or the live bot) can finish those.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import (
    USER_KEY,
    World,
    discord_world,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.testing.fake_discord import Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

STORY = " ".join(f"word{n}" for n in range(200))  # 40 s at the pace below: killed long before


@dataclass
class Mesh:
    world: World
    database: str


@pytest.fixture(scope="module")
async def mesh(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        tmp_path_factory.mktemp("deletion-races"),
        gateway={"unfinished_after_seconds": 3600.0},
    ) as world:
        yield Mesh(world, database)


async def scalar(database: str, sql: str, **params: object) -> object:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)
    finally:
        await engine.dispose()


async def test_a_key_she_saves_while_her_data_is_deleted_is_refused_and_not_kept(
    mesh: Mesh,
) -> None:
    world = mesh.world.scene()
    world.provider.hold_key_checks = asyncio.Event()
    async with running_bot(world):
        opened = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": "openrouter"}, subcommand=["set"]
        )
        await world.discord.wait_until(opened.modal)
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": USER_KEY})
        await asyncio.wait_for(world.provider.key_checking.wait(), 30)  # she is not deleted yet
        hers = await scalar(
            mesh.database,
            "SELECT id::text FROM core.users WHERE platform_user_id = :p",
            p=str(world.alice["id"]),
        )

        deleted = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        world.provider.hold_key_checks.set()  # the provider says the key works
        told = await world.discord.wait_until(lambda: "".join(submitted.texts()))

    assert deleted.startswith("Erased")
    assert "being deleted" in told
    assert "Saved" not in told
    kept = await scalar(
        mesh.database, "SELECT count(*) FROM vault.api_keys WHERE user_id = :u", u=hers
    )
    assert kept == 0


async def alices_personality(
    world: World, name: str, error_message: str = "", *, public: bool
) -> None:
    """Alice's personality `name` (its slug the name in lower case, "You are <name>.")."""
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug=name.lower(),
                display_name=name,
                system_prompt=f"You are {name}.",
                error_message=error_message,
                public=public,
            ),
        )
    )


async def job_of(world: World, key: str, until: Callable[[gw.Job], object]) -> gw.Job:
    for _ in range(600):
        try:
            reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise
        else:
            if until(reply.job):
                return reply.job
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {key!r} never got there")


def kill_answers_in_flight() -> None:
    """What kill -9 does to the bot's answers: they stop where they are, saying nothing
    (discord.py runs each message's handler as a task of its own)."""
    for task in asyncio.all_tasks():
        if task.get_name() == "discord.py: on_message":
            task.cancel()


async def half_shown_answer(world: World, who: Json, whose: str) -> tuple[Any, str, int]:
    """`who` asks `whose` for a story; the bot is killed once the preview shows half of it,
    and the answer's job has ended: the preview message, what it showed, and the provider
    calls paid so far."""
    world.provider.reply = STORY
    world.provider.chunk_delay = 0.2
    async with running_bot(world, grace_seconds=0.0):
        said = await world.discord.say(world.general, who, f"@{whose} tell me a story")
        key = f"{said.id}:{whose}"
        await job_of(world, key, lambda job: job.preview_message_ids)
        (preview,) = world.discord.webhook_messages(world.general)
        kill_answers_in_flight()
    half = preview.content
    await job_of(world, key, lambda job: job.status != common.JOB_STATUS_RUNNING)
    return preview, half, len(world.provider.chat_requests())


@pytest.mark.parametrize(
    ("whose", "voice"),
    [
        ("lilith", "*Lilith's candle gutters.*"),
        # Her own private personality, deleted with her data: the preview still says why,
        # in no personality's voice (before, its row took the hand-over with it, and the
        # bot dropped an answer that came without its personality: half an answer, no word).
        ("wren", "I couldn't answer that."),
    ],
)
async def test_her_half_shown_answer_says_her_data_is_being_deleted_after_a_restart(
    mesh: Mesh, whose: str, voice: str
) -> None:
    world = mesh.world.scene()
    await world.set_key(world.alice)
    if whose == "wren":
        await alices_personality(world, "Wren", public=False)
    preview, half, paid = await half_shown_answer(world, world.alice, whose)

    async with running_bot(world):
        deleted = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        await world.discord.wait_until(lambda: "being deleted" in preview.content)

    assert deleted.startswith("Erased")
    assert "word1" in half  # it had begun: half an answer, now replaced
    assert "word1" not in preview.content
    # After the reply header it had: the voice, then why, as a refused message reads.
    assert f"{voice}\n-# your data is being deleted" in preview.content
    assert "nothing you send is answered or kept" in preview.content
    assert world.discord.webhook_messages(world.general) == [preview]  # told once, in place
    assert len(world.provider.chat_requests()) == paid  # not generated again
    left = await scalar(
        mesh.database, "SELECT count(*) FROM core.personalities WHERE slug = 'wren'"
    )
    assert left == 0  # her private one went with her data


async def test_his_half_shown_answer_says_its_personality_was_deleted_after_a_restart(
    mesh: Mesh,
) -> None:
    world = mesh.world.scene()
    await world.set_key(world.bob)
    await alices_personality(world, "Finch", "*Finch ruffles its feathers.*", public=True)
    preview, half, paid = await half_shown_answer(world, world.bob, "finch")

    async with running_bot(world):
        deleted = await slash_text(
            world, world.alice, "personality", "delete", personality="finch", confirm="DELETE"
        )
        await world.discord.wait_until(lambda: "was deleted" in preview.content)

    assert deleted.startswith("Deleted **Finch**")
    assert "word1" in half  # it had begun: half an answer, now replaced
    assert "word1" not in preview.content
    # After the reply header it had: the default voice (not Finch's), then why.
    assert (
        "I couldn't answer that.\n-# this personality was deleted, so this answer stops here"
        in preview.content
    )
    assert "Finch ruffles" not in preview.content
    assert world.discord.webhook_messages(world.general) == [preview]  # told once, in place
    assert len(world.provider.chat_requests()) == paid  # not generated again
    left = await scalar(
        mesh.database, "SELECT count(*) FROM core.personalities WHERE slug = 'finch'"
    )
    assert left == 0


async def test_his_answer_streaming_when_its_personality_is_deleted_says_so_in_place(
    mesh: Mesh,
) -> None:
    world = mesh.world.scene()
    await world.set_key(world.bob)
    await alices_personality(world, "Plover", "*Plover tilts its head.*", public=True)
    plover = await scalar(
        mesh.database, "SELECT id::text FROM core.personalities WHERE slug = 'plover'"
    )
    world.provider.reply = STORY
    world.provider.chunk_delay = 0.2
    async with running_bot(world):
        said = await world.discord.say(world.general, world.bob, "@plover tell me a story")
        key = f"{said.id}:plover"
        await job_of(world, key, lambda job: job.preview_message_ids)
        (preview,) = world.discord.webhook_messages(world.general)
        assert "word1" in preview.content  # streaming: half an answer shown
        paid = len(world.provider.chat_requests())

        deleted = await slash_text(
            world, world.alice, "personality", "delete", personality="plover", confirm="DELETE"
        )
        # The live bot's stream ends (its run lost its job), whatever the preview then says.
        await world.discord.wait_until(lambda: "word1" not in preview.content, within=60)

    assert deleted.startswith("Deleted **Plover**")
    # After the reply header it had: the default voice (not Plover's), then why, exactly as
    # a half answer its dead bot left reads once the personality is deleted.
    assert (
        "I couldn't answer that.\n-# this personality was deleted, so this answer stops here"
        in preview.content
    ), preview.content
    assert "Plover tilts" not in preview.content
    assert "went wrong" not in preview.content
    assert world.discord.webhook_messages(world.general) == [preview]  # told once, in place
    bot = str(world.discord.bot_user["id"])
    posted = world.discord.messages.get(int(world.general["id"]), [])
    assert [m for m in posted if m.data["author"]["id"] == bot and not m.webhook_id] == []
    assert len(world.provider.chat_requests()) == paid  # not generated again
    # Nothing of the answer reaches history: its job went with Plover, and so did memory's.
    jobs = await scalar(
        mesh.database, "SELECT count(*) FROM core.jobs WHERE idempotency_key = :k", k=key
    )
    turns = await scalar(
        mesh.database, "SELECT count(*) FROM memory.turns WHERE personality_id = :p", p=plover
    )
    assert (jobs, turns) == (0, 0)


async def test_her_answer_streaming_when_her_data_is_deleted_says_so_in_no_ones_voice(
    mesh: Mesh,
) -> None:
    """Alice deletes her data while her own private personality answers her, its bot alive:
    the run ends USER_DATA_DELETING, and that bot edits the preview into why in the default
    voice, as a restarted bot would, posting nothing else (before, the bot took it as the
    refusal of a message and showed it in Robin's voice, which her deletion deletes)."""
    world = mesh.world.scene()
    await world.set_key(world.alice)
    await alices_personality(world, "Robin", "*Robin puffs its chest.*", public=False)
    world.provider.reply = STORY
    world.provider.chunk_delay = 0.2
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@robin tell me a story")
        key = f"{said.id}:robin"
        await job_of(world, key, lambda job: job.preview_message_ids)
        (preview,) = world.discord.webhook_messages(world.general)
        assert "word1" in preview.content  # streaming: half an answer shown
        paid = len(world.provider.chat_requests())

        deleted = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        await world.discord.wait_until(lambda: "word1" not in preview.content, within=60)

    assert deleted.startswith("Erased")
    assert "I couldn't answer that.\n-# your data is being deleted" in preview.content, (
        preview.content
    )
    assert "Robin puffs" not in preview.content
    assert world.discord.webhook_messages(world.general) == [preview]  # told once, in place
    assert len(world.provider.chat_requests()) == paid  # not generated again
    jobs = await scalar(
        mesh.database, "SELECT count(*) FROM core.jobs WHERE idempotency_key = :k", k=key
    )
    assert jobs == 0
