"""Whether a spoken answer can be posted, asked before it is paid for: the bot's own voice
message (Send Messages, Attach Files, Send Voice Messages) or else the personality's webhook
(the delivery rules); auto-speak asks nothing of the gateway where neither is open."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import discord

from tzurot.bot.voice import Spoken, VoicePoster, voice_problem
from tzurot.v1 import common_pb2 as common

EVERYTHING = discord.Permissions(
    view_channel=True,
    send_messages=True,
    attach_files=True,
    send_voice_messages=True,
    manage_webhooks=True,
)


class Channel(discord.TextChannel):
    """A text channel whose bot member has `perms` (nothing else is read)."""

    def __init__(self, perms: discord.Permissions) -> None:
        self.id = 42
        self.guild = SimpleNamespace(me=object())  # type: ignore[assignment]  # only `me` is read
        self.perms = perms

    def permissions_for(self, obj: Any, /) -> discord.Permissions:
        return self.perms


def without(**denied: bool) -> discord.Permissions:
    perms = discord.Permissions(EVERYTHING.value)
    perms.update(**dict.fromkeys(denied, False))
    return perms


def test_a_voice_can_be_posted_by_the_bot_or_else_through_the_webhook() -> None:
    assert voice_problem(Channel(EVERYTHING)) is None
    # No voice message from the bot: the audio file goes through the webhook.
    assert voice_problem(Channel(without(send_voice_messages=True))) is None
    assert voice_problem(Channel(without(attach_files=True))) is None
    # Neither way is open.
    problem = voice_problem(Channel(without(send_voice_messages=True, manage_webhooks=True)))
    assert problem is not None
    assert "Send Voice Messages" in problem
    assert "Manage Webhooks" in problem
    assert voice_problem(Channel(without(attach_files=True, manage_webhooks=True))) is not None


def test_what_discord_says_the_app_may_do_counts_too() -> None:
    """An interaction's app_permissions: the cache may be stale; either one refusing refuses."""
    no_voice = without(send_voice_messages=True)
    channel = Channel(without(manage_webhooks=True))
    assert voice_problem(channel) is None
    assert voice_problem(channel, no_voice) is not None


class Gateway:
    def __init__(self) -> None:
        self.asked = 0

    def speak_answer(self, request: object) -> Any:
        self.asked += 1
        raise AssertionError("asked for a speech that cannot be posted")


async def test_auto_speak_asks_for_nothing_where_no_voice_can_be_posted() -> None:
    gateway = Gateway()
    poster = VoicePoster(gateway, webhooks=None, http=None)  # type: ignore[arg-type]  # fakes
    closed = Channel(without(send_voice_messages=True, manage_webhooks=True))
    poster.speak_later(closed, common.Actor(), "job-1", 1, common.Personality())
    await poster.drain()
    assert gateway.asked == 0  # nothing asked of the gateway, so nothing paid


class Http:
    """discord.py's HTTP client as the poster uses it: the voice message's payload kept."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_message(self, channel_id: int, *, params: Any) -> dict[str, Any]:
        self.sent.append(params.multipart[0]["value"])  # payload_json
        return {"id": "7"}


async def test_the_voice_message_replies_to_the_answer_only_where_it_may() -> None:
    """A reply needs Read Message History (Discord refuses it with 403 otherwise): without
    it the voice message goes under the answer with no reference, never refused."""
    spoken = Spoken(b"OggS", common.SpeechFinished(duration_secs=1.5, waveform="AAA="))
    for perms, reference in [
        (EVERYTHING | discord.Permissions(read_message_history=True), True),
        (EVERYTHING, False),  # no Read Message History
    ]:
        http = Http()
        poster = VoicePoster(None, webhooks=None, http=http)  # type: ignore[arg-type]  # fakes
        posted = await poster.post(Channel(perms), spoken, reply_to=5, shown=common.Personality())
        assert posted.voice_message
        (payload,) = [json.loads(p) for p in http.sent]
        assert payload["flags"] == discord.MessageFlags(voice=True).value
        if reference:
            assert payload["message_reference"]["message_id"] == 5
        else:
            assert "message_reference" not in payload
