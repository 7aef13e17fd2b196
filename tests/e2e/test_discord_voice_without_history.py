"""A voice message where the bot may not read the channel's history: Discord refuses a reply
then (discord-api-docs resources/message "Create Message": a reply needs
READ_MESSAGE_HISTORY), so the bot posts its voice message under the answer without the
reference, a voice message still, and nothing is refused."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.e2e.test_discord_voice import give_keys, lilith_speaks, settle, voice_messages
from tzurot.testing.discord_e2e import VoiceWorld, running_bot, slash_text
from tzurot.testing.fake_discord.rules import Permission
from tzurot.v1 import common_pb2 as common

pytestmark = pytest.mark.e2e


async def test_without_read_message_history_the_voice_message_comes_as_no_reply(
    voice_scene: VoiceWorld,
) -> None:
    world = voice_scene.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    world.discord.deny_bot(world.general, Permission.READ_MESSAGE_HISTORY)
    with capture_logs() as logs:
        async with running_bot(world) as bot:
            assert "on:" in await slash_text(world, world.alice, "voice", "enable")
            said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
            await world.delivered(f"{said.id}:lilith")
            await world.discord.wait_until(  # the voice message, or the audio file instead
                lambda: (
                    voice_messages(world, world.general)
                    or len(world.discord.webhook_messages(world.general)) > 1
                )
            )
            await settle(bot)
            text, *fallback = world.discord.webhook_messages(world.general)
            assert fallback == []  # no audio file through the webhook instead
            (spoken,) = voice_messages(world, world.general)
            # Speak, on request, posts the same way.
            asked = await world.discord.context_menu(world.general, world.alice, "Speak", text)
            await world.discord.wait_until(lambda: any("Spoken" in t for t in asked.texts()))
    assert world.discord.webhook_messages(world.general) == [text]  # no audio file either
    voices = voice_messages(world, world.general)
    assert [v.id for v in voices[:1]] == [spoken.id]  # auto, then Speak's
    assert len(voices) == 2
    for voice in voices:
        assert voice.id > text.id  # under the answer
        assert voice.content == ""
        assert "message_reference" not in voice.data  # no reply: Discord would refuse it
        (attachment,) = voice.data["attachments"]
        assert attachment["filename"] == "voice-message.ogg"
        assert attachment.get("waveform")
    assert not world.discord.refusals  # nothing tried that Discord refuses
    events = {entry["event"] for entry in logs}
    assert "bot.voice_posted" in events
    assert not events & {"bot.voice_message_refused", "bot.voice_failed"}
