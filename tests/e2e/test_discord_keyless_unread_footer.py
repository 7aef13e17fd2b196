"""She sees, under the answer, that her photo and voice note were left unread and which key
would read them, through the fake Discord, the real bot and the whole mesh.

Hearth answers on the operator's keyless chat server; its model sees no images, so a helper
must describe her photo (on OpenRouter) and another transcribe her voice note (on OpenAI).
Without her own key for either, inference leaves both unread and tells Hearth so in the
prompt (test_discord_keyless_attachments.py). Before, she was told nothing: Hearth might
ignore the note, and she could not know why her photo went unseen. Now the answer's footer
(GenerationFinished.footer, shown small under the answer, never in history) says it, whether
or not her model_footer setting is on; with it on, the model comes first on the same line.

A bot that dies with the answer whole at the gateway but not yet shown (its preview half the
answer) leaves it to its successor, handed the answer (`UnfinishedAnswer`): that used to carry
the content alone, so the restarted bot showed the answer without the line, and she was never
told. It now carries the footer too (UnfinishedAnswer.footer), rebuilt from the job's row.
Here the gateway hands such an answer over 1 s after its job ended (30 s by default)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tzurot.bot.posting import StreamedAnswer
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .keyless_mesh import import_hearth, keyless_world, operator_inference
from .keyless_mesh import local_server as local_server  # noqa: PLC0414  # the fixture

pytestmark = pytest.mark.e2e

SYSTEM_KEY = "sk-or-operatorSYSTEMkey-unreadFooter"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OGG = b"OggS" + bytes(300)
STORY = " ".join(f"w{i:03d}" for i in range(150))
"""An answer long enough to reach the bot in several chunks (a short one comes whole)."""
IMAGE_LINE = "image not read: add a key for openrouter with /wallet set openrouter"
VOICE_LINE = "voice message not read: add a key for openai with /wallet set openai"


@pytest.fixture(scope="module")
async def operator_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with keyless_world(
        postgres_url,
        tmp_path_factory.mktemp("keyless-unread-footer"),
        local_server,
        inference=operator_inference(SYSTEM_KEY, transcription_provider="openai"),
        gateway={"guest_mode": False, "unfinished_after_seconds": 1.0},
    ) as world:
        yield world


async def hearth(world: World) -> None:
    world.provider.valid_keys.add(SYSTEM_KEY)  # the operator's key works there
    await import_hearth(world)


async def test_the_answer_says_her_photo_was_not_read_and_which_key_reads_it(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    world = operator_mesh.scene()
    await hearth(world)
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Hearth what is this?", attachments=[image]
        )
        job = await world.delivered(f"{said.id}:hearth", within=15.0)
        # Her next message: the footer is no part of the answer Hearth reads back.
        again = await world.discord.say(world.general, world.alice, "@Hearth well?")
        await world.delivered(f"{again.id}:hearth", within=15.0)

    first, _ = world.discord.webhook_messages(world.general)
    assert first.author_name.startswith("Hearth")
    # Under the answer (the reply's quote line above it), model_footer being off:
    assert first.content.endswith(f"\n{job.content}\n-# {IMAGE_LINE}")
    history = json.dumps(local_server.chat_requests()[-1].body["messages"])
    assert "not read: add a key" not in history
    assert world.provider.requests == []  # no helper asked, on any key


async def test_with_the_model_footer_on_both_files_and_the_model_share_the_line(
    operator_mesh: World,
) -> None:
    world = operator_mesh.scene()
    await hearth(world)
    await world.cli.SetSetting(
        gw.SetSettingRequest(
            actor=member_actor(world.alice),
            scope=common.CONFIG_SOURCE_USER,
            key="model_footer",
            value=struct_pb2.Value(bool_value=True),
        )
    )
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    voice = world.discord.upload(world.general, "voice-message.ogg", OGG, "audio/ogg")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Hearth and these?", attachments=[image, voice]
        )
        job = await world.delivered(f"{said.id}:hearth", within=15.0)

    (posted,) = world.discord.webhook_messages(world.general)
    assert posted.content.endswith(
        f"\n{job.content}\n-# my-llm/local/hearth · {IMAGE_LINE} · {VOICE_LINE}"
    )
    assert world.provider.requests == []


async def job_when(world: World, key: str, reached: Any) -> gw.Job:
    """The job for `key` once `reached(job)` holds (polled through the gateway)."""
    for _ in range(600):
        try:
            reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise
        else:
            if reached(reply.job):
                return reply.job
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {key!r} never got there")


def kill_answers_in_flight() -> None:
    """What kill -9 does to the bot's answers: they stop where they are, saying nothing
    (discord.py runs each message's handler as a task of its own)."""
    for task in asyncio.all_tasks():
        if task.get_name() == "discord.py: on_message":
            task.cancel()


async def test_a_restarted_bot_shows_the_line_under_the_answer_it_finishes(
    operator_mesh: World, local_server: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = operator_mesh.scene()
    await hearth(world)
    monkeypatch.setattr(local_server, "reply", STORY)
    monkeypatch.setattr(local_server, "chunk_delay", 0.01)  # word by word, not all at once
    finish, update = StreamedAnswer.finish, StreamedAnswer.update
    dying = asyncio.Event()

    async def first_words_only(self: StreamedAnswer, text: str) -> None:
        if not (dying.is_set() and self.message_ids):  # the preview: its first sync only
            await update(self, text)

    async def never_finished(self: StreamedAnswer, text: str) -> list[int]:
        if not dying.is_set():
            return await finish(self, text)
        await asyncio.Event().wait()  # the bot dies here: the answer whole, its preview half
        raise AssertionError("unreachable")

    monkeypatch.setattr(StreamedAnswer, "finish", never_finished)
    monkeypatch.setattr(StreamedAnswer, "update", first_words_only)
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    dying.set()
    async with running_bot(world, grace_seconds=0.0):
        said = await world.discord.say(
            world.general, world.alice, "@Hearth what is this?", attachments=[image]
        )
        key = f"{said.id}:hearth"
        await job_when(
            world,
            key,
            lambda job: job.status == common.JOB_STATUS_STREAMED and job.preview_message_ids,
        )
        (half,) = [m.content for m in world.discord.webhook_messages(world.general)]
        kill_answers_in_flight()
    dying.clear()

    async with running_bot(world):
        job = await world.delivered(key, within=60.0)

    (shown,) = world.discord.webhook_messages(world.general)
    assert IMAGE_LINE not in half  # the dead bot never showed it
    assert not half.endswith(STORY)  # nor the whole answer: half of it
    assert job.content == STORY
    assert shown.content.endswith(f"\n{job.content}\n-# {IMAGE_LINE}")
    assert list(job.delivered_message_ids) == [str(shown.id)]
