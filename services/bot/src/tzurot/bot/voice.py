"""Voice answers: fetch the spoken answer from the gateway and post it as a Discord voice
message, or as a plain audio file where a voice message is not allowed.

Discord's rules (discord-api-docs, resources/message "Voice Messages", resources/webhook
"Execute Webhook"): a voice message has the IS_VOICE_MESSAGE flag, no content, and exactly
one audio attachment carrying `duration_secs` and `waveform`. Webhooks cannot set that flag,
so the bot itself posts the voice bubble, as a reply to the personality's answer (only where
it has Read Message History, which Discord requires of a reply, resources/message "Create
Message": elsewhere it goes without the reference, as the notices do); where it may not post
it (no Send Voice Messages, or a channel refusing voice messages: 50013 / 50173) the audio goes
out through the personality's webhook as an ordinary attachment instead. discord.py has
no voice-message API: the flag and the attachment fields are set on its own request helper.

Speech is paid for when the gateway is asked (SpeakAnswer), so whether either way of posting
it is open is checked before that (`voice_problem`, which also turns away a thread locked to the
bot: Discord refuses the bot's messages there), never after. An answer spoken by itself
whose voice message cannot come (its key rejected or lacking a permission, no characters left,
Discord refusing it) gets a short notice from the bot under the text, saying why and what to
do (voice_notices.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import structlog
from discord.http import handle_message_parameters

from tzurot.bot.delivery import delivery_problem, locked_thread
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.voice_notices import (
    no_voice_notice,
    notice,
    own_clone_missing_notice,
    stand_in_notice,
)
from tzurot.bot.webhooks import WebhookPool, sanitize_username, webhook_channel
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

VOICE_FILENAME = "voice-message.ogg"
CANNOT_SEND_VOICE_HERE = 50173
MISSING_PERMISSIONS = 50013


class VoiceFile(discord.File):
    """An OGG/Opus file whose attachment entry carries the voice message's metadata."""

    def __init__(self, data: bytes, duration_secs: float, waveform: str) -> None:
        super().__init__(io.BytesIO(data), filename=VOICE_FILENAME)
        self.duration_secs = duration_secs
        self.waveform = waveform

    def to_dict(self, index: int) -> dict[str, Any]:
        payload = super().to_dict(index)
        payload["duration_secs"] = self.duration_secs
        payload["waveform"] = self.waveform
        return payload


@dataclass(frozen=True)
class Spoken:
    audio: bytes
    finished: common.SpeechFinished


@dataclass(frozen=True)
class Posted:
    message_id: int
    voice_message: bool
    posted_at: float  # time.perf_counter() when Discord accepted it


async def fetch_speech(gateway: GatewayClient, request: gw.SpeakAnswerRequest) -> Spoken:
    audio = bytearray()
    finished: common.SpeechFinished | None = None
    # Closed on every way out (a cancelled task): the gateway's call is cancelled at once.
    async with contextlib.aclosing(gateway.speak_answer(request)) as events:
        async for event in events:
            if event.WhichOneof("event") == "chunk":
                audio += event.chunk.data
            else:
                finished = event.finished
    if finished is None:
        raise TzurotError("the gateway ended the voice without its end", reason="NO_SPEECH")
    return Spoken(bytes(audio), finished)


def _allows_voice_message(perms: discord.Permissions, *, in_thread: bool) -> bool:
    """Discord's rule for a voice message: Send Messages (in Threads), Attach Files and Send
    Voice Messages, in a channel the bot can see."""
    send = perms.send_messages_in_threads if in_thread else perms.send_messages
    return bool(perms.view_channel and send and perms.attach_files and perms.send_voice_messages)


def _own_permissions(channel: object) -> discord.Permissions | None:
    """The bot's cached permissions in `channel`; None where none are known (a DM, or a
    PartialMessageable: a channel not in the cache)."""
    me = getattr(getattr(channel, "guild", None), "me", None)
    permissions_for = getattr(channel, "permissions_for", None)
    if me is None or permissions_for is None or isinstance(channel, discord.PartialMessageable):
        return None
    perms: discord.Permissions = permissions_for(me)
    return perms


def _reply_to(channel: object, message_id: int) -> discord.MessageReference | None:
    """A reference making the bot's message a reply to `message_id`, or None where the bot
    lacks Read Message History in `channel`: Discord refuses a reply then (403 50013), so the
    message goes without it. Permissions unknown (a DM, a channel not cached): a reply, and
    Discord decides."""
    perms = _own_permissions(channel)
    if perms is not None and not perms.read_message_history:
        return None
    return discord.MessageReference(
        message_id=message_id, channel_id=int(getattr(channel, "id", 0)), fail_if_not_exists=False
    )


def _may_send_voice(channel: object, granted: discord.Permissions | None = None) -> bool:
    """Whether the bot itself may post a voice message in `channel`, by its cached permissions
    there and, for an interaction, what Discord says the app may do (`granted`)."""
    in_thread = isinstance(channel, discord.Thread)
    own = _own_permissions(channel)
    known = [perms for perms in (granted, own) if perms is not None]
    # Nothing known (a DM): Discord decides.
    return all(_allows_voice_message(perms, in_thread=in_thread) for perms in known)


def voice_problem(channel: object, granted: discord.Permissions | None = None) -> str | None:
    """Why no spoken answer can be posted in `channel` (a sentence for the user), or None:
    neither the bot's voice message nor the audio file through the personality's webhook.
    A thread locked to the bot takes neither (delivery.py `locked_thread`)."""
    if locked_thread(channel):
        return (
            "This thread is locked: only moderators (**Manage Threads**) can post in it, so I "
            "can't post a voice message here."
        )
    if _may_send_voice(channel, granted) or delivery_problem(channel) is None:
        return None
    return (
        "I can't post a voice message here: I need **Send Messages**, **Attach Files** and "
        "**Send Voice Messages** (or **Manage Webhooks**, for the audio file). A server admin "
        "can grant them in the channel settings."
    )


NOTICE_AGAIN_AFTER_SECONDS = 15 * 60.0
"""The same notice to the same user is posted once in this long (a personality that always
speaks, and a user with no voice key, would otherwise get it under every answer)."""


class VoicePoster:
    def __init__(
        self,
        gateway: GatewayClient,
        webhooks: WebhookPool,
        http: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway, self._webhooks, self._http = gateway, webhooks, http
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock = clock
        self._told: dict[tuple[str, str], float] = {}  # (user, notice) → when it was posted
        self._stand_in_told: set[tuple[str, str]] = set()  # (user, personality) told once

    def speak_later(
        self,
        channel: discord.abc.Messageable,
        actor: common.Actor,
        job_id: str,
        reply_to: int,
        shown: common.Personality,
    ) -> None:
        """Speaks a delivered answer in the background: the text is never held up by it.
        Nothing is asked (nor paid for) where the voice could not be posted."""
        if voice_problem(channel) is not None:
            log.info("bot.voice_not_postable", job_id=job_id)
            return
        task = asyncio.create_task(
            self._speak_in_background(channel, actor, job_id, reply_to, shown)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _speak_in_background(
        self,
        channel: discord.abc.Messageable,
        actor: common.Actor,
        job_id: str,
        reply_to: int,
        shown: common.Personality,
    ) -> None:
        started = time.perf_counter()
        try:
            spoken = await fetch_speech(
                self._gateway, gw.SpeakAnswerRequest(actor=actor, job_id=job_id)
            )
            posted = await self.post(channel, spoken, reply_to=reply_to, shown=shown)
        except (TzurotError, discord.HTTPException) as exc:
            # The text was delivered and stays; the voice message the user waits for does
            # not come, so they are told why under the answer (the gateway marked a rejected
            # key inactive before its error came back).
            log.info("bot.voice_failed", error=type(exc).__name__, reason=_reason(exc))
            if isinstance(exc, TzurotError):
                told = no_voice_notice(exc, actor.user_id)
            else:
                told = notice("Discord refused it here.", actor.user_id)
            if told is not None and self._tell_now(actor.user_id, told):
                await self._tell(channel, told, reply_to=reply_to)
            return
        log.info(
            "bot.voice_posted",
            job_id=job_id,
            voice_message=posted.voice_message,
            seconds=round(posted.posted_at - started, 3),
            stand_in_voice=spoken.finished.stand_in_voice,
        )
        whose = (actor.user_id, shown.id or shown.display_name)
        if spoken.finished.stand_in_voice and whose not in self._stand_in_told:
            # Once per user and personality: every answer after it sounds the same.
            self._stand_in_told.add(whose)
            if spoken.finished.own_clone_missing:  # hers, deleted at ElevenLabs: she can fix it
                text = own_clone_missing_notice(shown.display_name, shown.slug, actor.user_id)
            else:
                text = stand_in_notice(shown.display_name, actor.user_id)
            await self._tell(channel, text, reply_to=reply_to)

    def _tell_now(self, user_id: str, text: str) -> bool:
        """Whether `text` is news to the user: not told them in NOTICE_AGAIN_AFTER_SECONDS."""
        now = self._clock()
        self._told = {
            told: at for told, at in self._told.items() if now - at < NOTICE_AGAIN_AFTER_SECONDS
        }
        if (user_id, text) in self._told:
            return False
        self._told[(user_id, text)] = now
        return True

    async def _tell(self, channel: discord.abc.Messageable, text: str, *, reply_to: int) -> None:
        """A notice from the bot replying to the answer (no reply where it may not read the
        history a reply needs). Mentions are shown, never pinged; a refusal is logged. The
        bot's Send Messages is known: `voice_problem` asked for it (the webhook needs it too)."""
        reference = _reply_to(channel, reply_to)
        reply: dict[str, Any] = {} if reference is None else {"reference": reference}
        try:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none(), **reply)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.info("bot.voice_notice_refused", error=type(exc).__name__, reason=_reason(exc))

    async def post(
        self,
        channel: discord.abc.Messageable,
        spoken: Spoken,
        *,
        reply_to: int,
        shown: common.Personality,
    ) -> Posted:
        """A voice message from the bot replying to `reply_to` (under it, without the reply,
        where the bot may not read the history a reply needs), else the audio as a plain
        attachment through the personality's webhook (`voice_problem` says whether either can
        be posted: ask it before paying for the speech)."""
        if _may_send_voice(channel):
            try:
                return await self._voice_message(channel, spoken, reply_to)
            except discord.HTTPException as exc:
                if exc.code not in (CANNOT_SEND_VOICE_HERE, MISSING_PERMISSIONS):
                    raise
                log.info("bot.voice_message_refused", code=exc.code)
        return await self._audio_file(channel, spoken, shown)

    async def _voice_message(
        self, channel: discord.abc.Messageable, spoken: Spoken, reply_to: int
    ) -> Posted:
        target_id = int(getattr(channel, "id", 0))
        reference = _reply_to(channel, reply_to)
        params = handle_message_parameters(
            file=VoiceFile(spoken.audio, spoken.finished.duration_secs, spoken.finished.waveform),
            flags=discord.MessageFlags(voice=True),
            allowed_mentions=discord.AllowedMentions.none(),
            message_reference=(
                reference.to_message_reference_dict()
                if reference is not None
                else discord.utils.MISSING
            ),
        )
        with params:
            data = await self._http.send_message(target_id, params=params)
        return Posted(int(data["id"]), True, time.perf_counter())

    async def _audio_file(
        self, channel: discord.abc.Messageable, spoken: Spoken, shown: common.Personality
    ) -> Posted:
        parent, thread = webhook_channel(channel)
        hook = await self._webhooks.for_channel(parent)
        sent = await hook.send(
            file=discord.File(io.BytesIO(spoken.audio), filename=VOICE_FILENAME),
            username=sanitize_username(shown.display_name or "Tzurot"),
            avatar_url=shown.avatar_url or discord.utils.MISSING,
            thread=thread or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none(),
            wait=True,
        )
        return Posted(sent.id, False, time.perf_counter())

    async def drain(self) -> None:
        """Waits for voices being made (a clean stop, and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _reason(exc: Exception) -> str:
    if isinstance(exc, TzurotError):
        return exc.reason
    if isinstance(exc, discord.HTTPException):
        return str(exc.code)
    return ""
