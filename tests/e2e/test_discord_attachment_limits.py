"""Attachment limits through the fake Discord and the whole mesh: `max_images` (set with
/settings) limits images only; a voice message still reaches the prompt, within `max_audio`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.audio import encode_tone
from tzurot.bot.commands.common import NOT_YET
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.fake_provider import echo_reply

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
DESCRIPTION = "a grey cat asleep on a red sofa"


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The shared mesh, with inference allowed to read the fake Discord's CDN."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("attachments")),
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


async def test_max_images_limits_images_only(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    files = [
        world.discord.upload(world.general, "one.png", PNG, "image/png"),
        world.discord.upload(world.general, "two.png", PNG, "image/png"),
        world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg"),
    ]
    async with running_bot(world):
        limited = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "max_images", "value": "1"},
            subcommand=["set"],
        )
        await world.discord.wait_until(lambda: any(limited.texts()))
        said = await world.discord.say(
            world.general, world.alice, "@Lilith what do you see and hear?", attachments=files
        )
        await world.delivered(f"{said.id}:lilith")
    set_text = "\n".join(limited.texts())
    answers = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    asked = str(answers[-1].body["messages"][-1]["content"])
    assert NOT_YET not in set_text
    assert "max_images" in set_text
    assert asked.count(DESCRIPTION) == 1  # one image of two: max_images is 1
    assert world.provider.transcript in asked  # the audio is not an image: it still counts
    assert len(world.provider.transcription_requests()) == 1
