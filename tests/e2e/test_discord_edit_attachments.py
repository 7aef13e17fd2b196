"""Editing a message with files, through the fake Discord and the whole mesh: the edit changes
only what the user typed. The next prompt's history still holds what was read of the files
(an image's description, a voice message's transcript, the note of a file not read) and a
forward the message took, with the new text and not the old."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.audio import encode_tone
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot, settled
from tzurot.testing.fake_provider import echo_reply

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
DESCRIPTION = "a grey cat asleep on a red sofa"
FORWARD_TURN = "[forwarded a message]"


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The shared mesh, with inference allowed to read the fake Discord's CDN."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("edit-files")),
        inference={"attachment_hosts": ["127.0.0.1"], "transcription_provider": "openrouter"},
    ) as w:
        yield w


def describing_model(body: dict[str, Any]) -> str:
    """The vision model describes any image it is shown; everyone else echoes."""
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return DESCRIPTION
    return echo_reply(body)


def history(world: World) -> list[str]:
    """The users' turns before the last one in Lilith's last prompt (oldest first)."""
    asked = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    return [str(m["content"]) for m in asked[-1].body["messages"][:-1] if m["role"] == "user"]


async def test_an_edit_keeps_an_images_description(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    picture = world.discord.upload(world.general, "cat.png", PNG, "image/png")
    async with running_bot(world) as bot:
        said = await world.discord.say(
            world.general, world.alice, "@Lilith my cat is called Tom", attachments=[picture]
        )
        await world.delivered(f"{said.id}:lilith")
        await world.discord.edit_message(said, "@Lilith my cat is called Felix")
        await settled(world, bot)
        asked = await world.discord.say(world.general, world.alice, "@Lilith what is his name?")
        await world.delivered(f"{asked.id}:lilith")
    [turn] = [t for t in history(world) if "my cat is called" in t]
    assert "my cat is called Felix" in turn
    assert f"[Image cat.png: {DESCRIPTION}]" in turn
    assert "Tom" not in turn


async def test_an_edit_keeps_a_transcript_and_a_file_not_read(world: World) -> None:
    await world.set_key(world.alice)
    files = [
        world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg"),
        world.discord.upload(world.general, "notes.pdf", b"%PDF-1.4", "application/pdf"),
    ]
    async with running_bot(world) as bot:
        said = await world.discord.say(
            world.general, world.alice, "@Lilith hear this, in March", attachments=files
        )
        await world.delivered(f"{said.id}:lilith")
        await world.discord.edit_message(said, "@Lilith hear this, in April")
        await settled(world, bot)
        asked = await world.discord.say(world.general, world.alice, "@Lilith which month?")
        await world.delivered(f"{asked.id}:lilith")
    [turn] = [t for t in history(world) if "hear this" in t]
    assert "hear this, in April" in turn
    assert world.provider.transcript in turn
    assert "[notes.pdf: not read" in turn
    assert "March" not in turn


async def test_an_edited_comment_keeps_its_forwards_image(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    memes = world.discord.add_channel(world.guild, "memes")
    picture = world.discord.upload(memes, "cat.png", PNG, "image/png")
    source = await world.discord.say(memes, world.bob, "look at him", attachments=[picture])
    async with running_bot(world) as bot:
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, "@Lilith is he Tom?")
        await world.delivered(f"{said.id}:lilith")
        await world.discord.edit_message(said, "@Lilith is he Felix?")
        await settled(world, bot)
        asked = await world.discord.say(world.general, world.alice, "@Lilith well?")
        await world.delivered(f"{asked.id}:lilith")
    [turn] = [t for t in history(world) if "is he" in t]
    assert f"is he Felix?\n{FORWARD_TURN}\n> look at him" in turn
    assert f"[Image cat.png: {DESCRIPTION}]" in turn
    assert "Tom" not in turn


async def test_a_file_the_edit_took_off_leaves_its_description(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    files = [
        world.discord.upload(world.general, "cat.png", PNG, "image/png"),
        world.discord.upload(world.general, "dog.png", PNG, "image/png"),
    ]
    async with running_bot(world) as bot:
        said = await world.discord.say(
            world.general, world.alice, "@Lilith my pets: Tom", attachments=files
        )
        await world.delivered(f"{said.id}:lilith")
        said.data["attachments"] = said.data["attachments"][1:]  # the author took cat.png off
        await world.discord.edit_message(said, "@Lilith my pet: Rex")
        await settled(world, bot)
        asked = await world.discord.say(world.general, world.alice, "@Lilith which pet?")
        await world.delivered(f"{asked.id}:lilith")
    [turn] = [t for t in history(world) if "my pet" in t]
    assert turn.endswith(f"my pet: Rex\n[Image dog.png: {DESCRIPTION}]")
    assert "cat.png" not in turn
