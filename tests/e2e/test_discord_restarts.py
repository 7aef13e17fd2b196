"""Reactions and Inspect find an answer through the gateway, so they work on any answer in
history, from whichever bot process, after a restart.

A bot killed with half a long answer shown in two preview messages, the first of them deleted
by a moderator before the bot is back: its successor finishes the answer in the preview still
there and posts what is left anew, in order, nothing lost or shown twice, and the exchange is
delivered into history. Here the gateway hands such an answer over 1 s after its job ended
(30 s by default), so the test does not wait that long.

A gateway generating such an answer again (its bot died mid-answer) is stopped by a release
rollout (SIGTERM) mid-regeneration: the restarted gateway generates it again, and the bot
finishes it whole.

A rollout stopping the gateway while a live bot streams an answer: the bot asks for it again,
and the restarted gateway's answer streams into the very message the first one began, with
no "try again" (it used to end so). The other replica's sweep hands the failed job over as
abandoned while the bot waits (its preview note cannot reach the stopped replica); that
hand-over is left to the bot's stream, and deleted once the job is taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.splitting import split_message
from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.discord_e2e import World, discord_world, running_bot, settled
from tzurot.testing.processes import ServiceProcess, gateway_process
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

CHAPTERS = 8
STORY = " ".join("-".join(f"c{n}w{i:03d}" for i in range(110)) for n in range(CHAPTERS))
"""Eight 769-character chapters, one streamed chunk each (the fake provider streams word by
word): two to a 2000-character message, so a second message starts with the third chapter."""


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """conftest's, but an answer whose bot died is handed to its successor 1 s after its job
    ended, not 30 s."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        tmp_path_factory.mktemp("restarts"),
        gateway={"unfinished_after_seconds": 1.0},
    ) as world:
        yield world


async def test_inspect_and_regenerate_work_after_a_restart(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "First thoughts."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith think about it")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    paid = len(world.provider.chat_requests())
    world.provider.reply = "Second thoughts."
    async with running_bot(world) as bot:  # a new process: nothing of the first one's memory
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        await world.discord.wait_until(lambda: any(inspected.texts()))
        await world.discord.react(answer, world.bob, "🔄")  # not Bob's answer: ignored
        await settled(world, bot)
        after_bob = not answer.deleted, len(world.provider.chat_requests())
        await world.discord.react(answer, world.alice, "🔄")
        (again,) = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if m.content.endswith("Second thoughts.")
            ]
        )
    assert after_bob == (True, paid)  # Bob's reaction: nothing deleted, nothing paid
    text = "\n".join(inspected.texts())
    assert "not an answer" not in text
    assert "history turns, paid with your key" in text  # what informed it: Alice's own answer
    assert answer.deleted
    assert again.author_name == "Lilith"
    assert len(world.provider.chat_requests()) == paid + 1  # Bob's reaction cost nothing
    # The regenerated answer was built from the original message, fetched from Discord.
    assert (
        world.provider.chat_requests()[-1]
        .body["messages"][-1]["content"]
        .endswith("think about it")
    )


async def test_delete_works_after_a_restart(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    async with running_bot(world):
        await world.discord.react(answer, world.alice, "❌")
        await world.discord.wait_until(lambda: answer.deleted)
    assert world.discord.webhook_messages(world.general) == []


async def test_a_reply_after_a_restart_reaches_a_personality_whose_name_discord_refuses(
    world: World,
) -> None:
    """Webhook names may not contain "discord": "Discord Dan" posts as "Disc<hair space>ord
    Dan". After a restart the bot no longer remembers the answer, and that name finds no
    personality; the job that posted the answer does."""
    await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(
            format=gw.IMPORT_FORMAT_SEED_YAML,
            document=b"name: Discord Dan\nllm: {provider: openrouter, model: fake/dan}\n",
        )
    )
    await world.set_key(world.alice)
    world.provider.reply = "Hi, I am Dan."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Discord Dan hello")
        await world.delivered(f"{said.id}:discord-dan")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name != "Discord Dan"  # cleaned for Discord
    world.provider.reply = "Still Dan."
    async with running_bot(world):  # a new process: nothing of the first one's memory
        again = await world.discord.say(world.general, world.alice, "and now?", reply_to=answer)
        await world.delivered(f"{again.id}:discord-dan")
    assert world.discord.webhook_messages(world.general)[-1].content.endswith("Still Dan.")


async def job_of(world: World, key: str, until: Callable[[gw.Job], object]) -> gw.Job:
    for _ in range(1200):
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


async def noted_header(world: World, key: str) -> str:
    """The reply header gateway's Postgres keeps with the job's preview (migration 0025)."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                sa.text("SELECT preview_header FROM core.jobs WHERE idempotency_key = :k"),
                {"k": key},
            )
            return str(found)
    finally:
        await engine.dispose()


def kill_answers_in_flight() -> None:
    """What kill -9 does to the bot's answers: they stop where they are, saying nothing
    (discord.py runs each message's handler as a task of its own)."""
    for task in asyncio.all_tasks():
        if task.get_name() == "discord.py: on_message":
            task.cancel()


async def test_a_half_answer_whose_first_preview_a_moderator_deleted_is_finished_after_a_restart(
    world: World,
) -> None:
    await world.set_key(world.alice)
    world.provider.reply = STORY
    # A chapter a second, against the preview's edit every 1.5 s: the second message is posted
    # with the third chapter (~3 s in) and a third one would be with the fifth (~5 s in).
    world.provider.chunk_delay = 1.0
    async with running_bot(world, grace_seconds=0.0):
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a long story")
        key = f"{said.id}:lilith"
        noted = await job_of(world, key, lambda job: len(job.preview_message_ids) >= 2)
        previews = world.discord.webhook_messages(world.general)
        kill_answers_in_flight()  # nothing awaited since the read: nothing posted meanwhile
        world.provider.chunk_delay = 0.0  # the gateway's regeneration needs no pace
    half = [m.content for m in previews]
    first, second = previews
    await world.discord.delete_message(first)  # a moderator, while no bot is connected
    await job_of(world, key, lambda job: job.status != common.JOB_STATUS_RUNNING)

    async with running_bot(world) as bot:
        job = await world.delivered(key, within=60)
        await settled(world, bot)
        world.provider.reply = "And they lived happily ever after."
        then = await world.discord.say(world.general, world.alice, "@Lilith what happened next?")
        await world.delivered(f"{then.id}:lilith")

    # The kill left half an answer in two previews, the gateway knowing both.
    assert list(noted.preview_message_ids) == [str(first.id), str(second.id)]
    assert half[0].startswith(REPLY_QUOTE_PREFIX)  # the reply header, on the first
    assert "c2w000" in half[1]
    assert "c7w" not in "".join(half)
    # As she sees the channel: the first preview gone (untouched since the moderator deleted
    # it), the second edited into the answer's first piece, the rest posted anew after it, in
    # order. The reply header, gone with the first preview, is kept: the dead bot noted it
    # with the preview (it used to be lost, the event not naming the message it quoted).
    header = half[0].split("\n", 1)[0] + "\n"
    expected = split_message(header + STORY)
    assert len(expected) == CHAPTERS // 2
    shown = world.discord.webhook_messages(world.general)
    finished, follow_up = shown[:-1], shown[-1]
    assert [m.content for m in finished] == expected
    assert finished[0] is second
    assert second.content.startswith(header)
    assert await noted_header(world, key) == header
    assert all(m.id > second.id for m in finished[1:])
    assert all(m.author_name == "Lilith" for m in shown)
    assert first.deleted
    assert first.content == half[0]
    # Nothing else posted as the answer, or by the bot itself: every chapter shown once.
    posted = world.discord.messages.get(int(world.general["id"]), [])
    ours = [m for m in posted if m.webhook_id or m.data["author"]["id"] != str(world.alice["id"])]
    assert [m.id for m in ours] == [first.id, *(m.id for m in finished), follow_up.id]
    for chapter in range(CHAPTERS):
        assert sum(m.content.count(f"c{chapter}w000") for m in shown) == 1
    # Delivered with the messages that show it, and the exchange is in history once.
    assert job.status == common.JOB_STATUS_DELIVERED
    assert list(job.delivered_message_ids) == [str(m.id) for m in finished]
    assert follow_up.content.endswith("And they lived happily ever after.")
    (prompt,) = [
        r.body["messages"]
        for r in world.provider.chat_requests()
        if "what happened next?" in str(r.body["messages"][-1]["content"])
    ]
    told = [m for m in prompt if m["role"] == "assistant" and "c0w000" in str(m["content"])]
    asked = [m for m in prompt if m["role"] == "user" and "a long story" in str(m["content"])]
    assert len(told) == 1, prompt
    assert STORY in str(told[0]["content"])
    assert len(asked) == 1, prompt


ROLLED_STORY = " ".join(f"r{i:02d}" for i in range(24))
"""24 words, streamed one a half second: its regeneration still streaming when the rollout
stops it."""


@pytest.fixture
async def replica(world: World, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """A gateway replica of its own (a process, so that SIGTERM stops it as in a rollout),
    beside the mesh's, which is the other replica."""
    process = gateway_process(
        world.mesh,
        tmp_path / "gateway.log",
        {"TZUROT_GRACE_SECONDS": "5", "TZUROT_UNFINISHED_AFTER_SECONDS": "1"},
    )
    await process.start(world.mesh.pki)
    try:
        yield process
    finally:
        await process.stop()


@contextlib.asynccontextmanager
async def client_of(world: World, process: ServiceProcess) -> AsyncIterator[GatewayClient]:
    """A bot's gateway client, to that replica only (its channel kept open meanwhile: one
    garbage collected closes itself)."""
    async with secure_channel(
        process.addr,
        load_tls(world.mesh.pki / "bot"),
        server_identity="gateway",
        default_timeout=60,
        wait_for_ready=True,
    ) as channel:
        yield GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=60)


def asked(world: World, question: str) -> int:
    """How many chat calls the fake provider received whose last message asks `question`."""
    return sum(
        question in str(r.body["messages"][-1]["content"]) for r in world.provider.chat_requests()
    )


def logged(process: ServiceProcess, job_id: str) -> list[dict[str, object]]:
    """The replica's log entries about the job."""
    entries = []
    for line in process.log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("job_id") == job_id:
            entries.append(entry)
    return entries


async def test_a_regeneration_cut_off_by_a_rollout_of_its_gateway_is_finished_whole(
    world: World, replica: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot dies mid-answer (CLIENT_CANCELLED); the replica's sweep generates the answer
    again, and a rollout stops that replica (SIGTERM) mid-regeneration; the restarted replica
    generates it again, and the restarted bot finishes it whole, once."""
    # The mesh's own gateway claims no regeneration here: the replica is the only one that
    # runs them, so that its SIGTERM is what cuts one short (it still sweeps otherwise).
    mesh_gateway = world.mesh.gateway_app
    assert mesh_gateway is not None

    async def claimed_elsewhere(*_: object) -> None:
        return None

    monkeypatch.setattr(
        mesh_gateway.gateway._store,
        "claim_preview_retry",
        claimed_elsewhere,
    )
    await world.set_key(world.alice)
    world.provider.reply, world.provider.chunk_delay = ROLLED_STORY, 0.5

    async with (
        client_of(world, replica) as client,
        running_bot(world, gateway=client, grace_seconds=0.0),
    ):
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
        key = f"{said.id}:lilith"
        noted = await job_of(world, key, lambda job: len(job.preview_message_ids) >= 1)
        (preview,) = world.discord.webhook_messages(world.general)
        kill_answers_in_flight()  # the bot dies mid-answer
    half = preview.content
    # The replica's sweep generates it again (as slowly: still streaming at the SIGTERM).
    await world.discord.wait_until(lambda: asked(world, "tell me a story") == 2)
    await job_of(world, key, lambda job: job.status == common.JOB_STATUS_RUNNING)
    await until(
        lambda: any(
            e.get("event") == "job.unfinished_regenerating" for e in logged(replica, noted.id)
        ),
        "the replica began the regeneration",
    )
    await replica.signal(signal.SIGTERM)  # the rollout, mid-regeneration
    assert await replica.wait() == 0
    entries = logged(replica, noted.id)
    events = [e.get("event") for e in entries]
    assert "job.unfinished_regenerating" in events
    (stopped,) = [e for e in entries if e.get("event") == "job.unfinished_regeneration_stopped"]
    assert stopped.get("released") is True  # for the next sweep
    world.provider.chunk_delay = 0.0  # the next regeneration needs no pace

    await replica.start(world.mesh.pki)  # the rollout's new gateway and bot
    async with (
        client_of(world, replica) as client,
        running_bot(world, gateway=client) as bot,
    ):
        job = await world.delivered(key, within=60)
        await settled(world, bot)

    assert ROLLED_STORY not in half
    assert world.discord.webhook_messages(world.general) == [preview]  # nothing posted anew
    assert preview.content.startswith(REPLY_QUOTE_PREFIX)  # its reply header kept
    assert preview.content.endswith(ROLLED_STORY)
    assert preview.content.count(ROLLED_STORY) == 1
    assert "cut off" not in preview.content
    assert list(job.delivered_message_ids) == [str(preview.id)]
    assert (
        asked(world, "tell me a story") == 3
    )  # the answer, the regeneration cut short, the one finished


async def unfinished_events_of(world: World, job_id: str) -> list[dict[str, object]]:
    """The `unfinished` bot events queued for the job, as gateway's Postgres holds them."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT delivered_at, dropped_reason, attempts FROM core.bot_events"
                    " WHERE kind = 'unfinished' AND job_id = CAST(:j AS uuid)"
                ),
                {"j": job_id},
            )
            return [dict(r._mapping) for r in rows]
    finally:
        await engine.dispose()


async def test_a_rollout_mid_answer_is_asked_again_and_finished_in_the_same_message(
    world: World, replica: ServiceProcess
) -> None:
    await world.set_key(world.alice)
    world.provider.reply, world.provider.chunk_delay = ROLLED_STORY, 0.5

    async with (
        client_of(world, replica) as client,
        running_bot(world, gateway=client) as bot,
    ):
        said = await world.discord.say(
            world.general, world.alice, "@Lilith tell me a rollout story"
        )
        key = f"{said.id}:lilith"
        noted = await job_of(world, key, lambda job: len(job.preview_message_ids) >= 1)
        (preview,) = world.discord.webhook_messages(world.general)
        await replica.signal(signal.SIGTERM)  # the rollout, mid-answer
        assert await replica.wait() == 0
        half = preview.content
        # The mesh's own replica sweeps the failed job while its bot waits for the rollout's
        # new gateway: handed over as abandoned (the bot's note that clears its preview is
        # waiting for that gateway too).
        for _ in range(200):
            if await unfinished_events_of(world, noted.id):
                break
            await asyncio.sleep(0.1)
        assert await unfinished_events_of(world, noted.id), "the sweep never met the failed job"
        world.provider.chunk_delay = 0.0
        await replica.start(world.mesh.pki)  # the rollout's new gateway, on the same address
        job = await world.delivered(key, within=60)
        await settled(world, bot)

    assert ROLLED_STORY not in half
    assert world.discord.webhook_messages(world.general) == [preview]  # nothing posted anew
    assert preview.content.startswith(REPLY_QUOTE_PREFIX)  # its reply header kept
    assert preview.content.endswith(ROLLED_STORY)
    assert preview.content.count(ROLLED_STORY) == 1
    for told in ("try again", "cut off", "restarting"):
        assert told not in preview.content
    assert list(job.delivered_message_ids) == [str(preview.id)]
    assert job.attempts == 2
    assert (
        asked(world, "tell me a rollout story") == 2
    )  # the answer cut short, and the one asked for again
    # The hand-over was never shown: deleted once the job was taken up again, or (claimed
    # while the bot still waited) handed back by the bot for later, never acknowledged.
    for event in await unfinished_events_of(world, noted.id):
        assert event["delivered_at"] is None, event
