"""The notice under an answer whose voice message does not come: why, and what to do, in
the bot's own words (never the vendor's text, never the key), posted by the bot as a reply to
the answer that pings nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from tzurot.bot.voice import NOTICE_AGAIN_AFTER_SECONDS, VoicePoster
from tzurot.bot.voice_notices import no_voice_notice
from tzurot.runtime.errors import (
    FailedPrecondition,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)
from tzurot.v1 import common_pb2 as common

ALICE = "123456789012345678"


@pytest.mark.parametrize(
    ("err", "told"),
    [
        (
            FailedPrecondition(
                "elevenlabs refused the API key; set a working one with /wallet set elevenlabs",
                reason="INVALID_API_KEY",
                metadata={"provider": "elevenlabs", "key_source": "user"},
            ),
            "elevenlabs rejected your API key; store a new one with `/wallet set elevenlabs`.",
        ),
        (
            FailedPrecondition(
                "openai refused the key",
                reason="INVALID_API_KEY",
                metadata={"provider": "openai", "key_source": "system"},
            ),
            "openai refused the key of this bot's operator; tell them.",
        ),
        (
            FailedPrecondition(
                "your elevenlabs key lacks the `text_to_speech` permission this needs",
                reason="KEY_MISSING_PERMISSION",
                metadata={"provider": "elevenlabs", "permission": "text_to_speech"},
            ),
            "your elevenlabs key lacks the `text_to_speech` permission; allow it for the key "
            "in ElevenLabs, or store another key with `/wallet set elevenlabs`.",
        ),
        (
            # An inference older than the `permission` metadata.
            FailedPrecondition(
                "your elevenlabs key lacks a permission this needs",
                reason="KEY_MISSING_PERMISSION",
                metadata={"provider": "elevenlabs"},
            ),
            "your elevenlabs key lacks a permission speech needs; allow it for the key in "
            "ElevenLabs, or store another key with `/wallet set elevenlabs`.",
        ),
        (
            ResourceExhausted(
                "the elevenlabs account has no characters left this month",
                reason="PROVIDER_QUOTA_EXCEEDED",
                metadata={"provider": "elevenlabs"},
            ),
            "your elevenlabs account has no characters left this month; raise its plan in "
            "ElevenLabs, or store another key with `/wallet set elevenlabs`.",
        ),
        (
            ResourceExhausted(
                "quota", reason="PROVIDER_QUOTA_EXCEEDED", metadata={"provider": "openai"}
            ),
            "your openai quota or credit is used up; top it up with OpenAI, or store another "
            "key with `/wallet set openai`.",
        ),
        (
            FailedPrecondition(
                "no API key for elevenlabs; add one with /wallet set elevenlabs",
                reason="NO_API_KEY",
                metadata={"provider": "elevenlabs"},
            ),
            "you have no elevenlabs key; add one with `/wallet set elevenlabs`, or turn voice "
            "answers off with `/voice disable`.",
        ),
        (
            ResourceExhausted(
                "busy",
                retry_after_seconds=5,
                reason="PROVIDER_RATE_LIMITED",
                metadata={"provider": "elevenlabs"},
            ),
            "elevenlabs is rate limiting; use **Speak** in the answer's Apps menu to try again in "
            "a moment.",
        ),
        (
            FailedPrecondition("voice is turned off in this channel", reason="VOICE_OFF"),
            "voice is turned off in this channel.",
        ),
        (
            Unavailable("elevenlabs broke off the audio", metadata={"provider": "elevenlabs"}),
            "it could not be made right now; use **Speak** in the answer's Apps menu to try again.",
        ),
    ],
)
def test_each_reason_is_told_with_what_to_do(err: TzurotError, told: str) -> None:
    assert no_voice_notice(err, ALICE) == f"-# No voice message for <@{ALICE}>: {told}"


def test_nothing_to_say_tells_nothing_and_a_cli_user_is_not_mentioned() -> None:
    empty = FailedPrecondition("the answer has nothing to say", reason="NOTHING_TO_SAY")
    assert no_voice_notice(empty, ALICE) is None
    refused = FailedPrecondition("x", reason="INVALID_API_KEY", metadata={"provider": "elevenlabs"})
    assert no_voice_notice(refused, "cli:alice") == (
        "-# No voice message: elevenlabs rejected your API key; store a new one with "
        "`/wallet set elevenlabs`."
    )


def test_a_message_told_as_it_is_pings_nobody() -> None:
    odd = FailedPrecondition("no voice for @everyone", reason="NO_VOICE")
    told = no_voice_notice(odd)
    assert told is not None
    assert "@everyone" not in told


class Channel(discord.TextChannel):
    """A text channel whose bot member has `perms` (nothing else is read)."""

    def __init__(self, perms: discord.Permissions) -> None:
        self.id = 42
        self.guild = SimpleNamespace(me=object())  # type: ignore[assignment]  # only `me` is read
        self.perms = perms
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def permissions_for(self, obj: Any, /) -> discord.Permissions:
        return self.perms

    async def send(self, content: str, **kwargs: Any) -> Any:  # type: ignore[override]  # a fake
        self.sent.append((content, kwargs))


class RefusingGateway:
    """SpeakAnswer refused: her ElevenLabs key lacks `text_to_speech`."""

    async def speak_answer(self, request: object) -> AsyncIterator[Any]:
        raise FailedPrecondition(
            "lacks",
            reason="KEY_MISSING_PERMISSION",
            metadata={"provider": "elevenlabs", "permission": "text_to_speech"},
        )
        yield  # an async generator, as the client's


VOICE = discord.Permissions(
    view_channel=True,
    send_messages=True,
    attach_files=True,
    send_voice_messages=True,
    read_message_history=True,
    manage_webhooks=True,
)


async def spoken(perms: discord.Permissions) -> Channel:
    channel = Channel(perms)
    poster = VoicePoster(RefusingGateway(), webhooks=None, http=None)  # type: ignore[arg-type]  # fakes
    lilith = common.Personality(display_name="Lilith")
    poster.speak_later(channel, common.Actor(user_id=ALICE), "job-1", 7, lilith)
    await poster.drain()
    return channel


async def test_the_bot_replies_to_the_answer_where_it_may() -> None:
    channel = await spoken(VOICE)
    ((text, sent),) = channel.sent
    assert text.startswith(f"-# No voice message for <@{ALICE}>: your elevenlabs key lacks")
    assert sent["reference"].message_id == 7
    assert sent["allowed_mentions"].to_dict() == discord.AllowedMentions.none().to_dict()


async def test_without_read_message_history_the_notice_is_no_reply() -> None:
    perms = discord.Permissions(VOICE.value)
    perms.read_message_history = False
    channel = await spoken(perms)
    ((_, sent),) = channel.sent
    assert "reference" not in sent


async def test_the_same_notice_to_the_same_user_waits_a_quarter_of_an_hour() -> None:
    """A personality that always speaks, and a key lacking `text_to_speech`: the notice comes
    under the first answer, not under each one after it, and again once the time is up."""
    now = [1000.0]
    channel = Channel(VOICE)
    poster = VoicePoster(
        RefusingGateway(),  # type: ignore[arg-type]  # a fake
        webhooks=None,  # type: ignore[arg-type]  # never reached
        http=None,
        clock=lambda: now[0],
    )
    lilith = common.Personality(display_name="Lilith")
    for job in ("job-1", "job-2"):
        poster.speak_later(channel, common.Actor(user_id=ALICE), job, 7, lilith)
        await poster.drain()
    poster.speak_later(channel, common.Actor(user_id="987654321098765432"), "job-3", 8, lilith)
    await poster.drain()
    assert [text.split(":")[0] for text, _ in channel.sent] == [
        f"-# No voice message for <@{ALICE}>",
        "-# No voice message for <@987654321098765432>",
    ]
    now[0] += NOTICE_AGAIN_AFTER_SECONDS
    poster.speak_later(channel, common.Actor(user_id=ALICE), "job-4", 9, lilith)
    await poster.drain()
    assert len(channel.sent) == 3
