"""An answer's ending once generated: what was delivered confirmed to the gateway (then the
answer a 🔄's new one replaces deleted, the voice asked for), or what failed left where the
answer was and told (a scheduled turn, a mute, a deleted personality: kept quiet or edited into
why), what Discord refused told to the channel or logged, and the bot's own short notices.

`AnswerEndings` is `answering.Poster`'s base: the state its methods use is `Poster`'s (set by
its `__init__`)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import discord
import structlog

from tzurot.bot.answer_extras import take_away
from tzurot.bot.answers import Answer
from tzurot.bot.delivery import (
    CLOSED_THREAD_CODES,
    UNKNOWN_CHANNEL,
    ForbiddenChannels,
    channel_key,
    refusal_text,
)
from tzurot.bot.errors import answer_deleted, deleted_notice, error_reply, personality_gone
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.moderation import DenyNotices
from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.voice import VoicePoster
from tzurot.bot.webhooks import WebhookPool, webhook_channel
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common

# Named as before the split from answering.py: its events keep the logger they had.
log = structlog.get_logger("tzurot.bot.answering")


@dataclass(frozen=True)
class _Posted:
    """The messages an answer was posted as, in order: its text and files, then its
    reasoning's message, if any (`message_ids`); the voice goes under the answer's last.
    `files_on`: the message of its text its first files were attached to, if any."""

    answer_ids: list[int]
    reasoning_ids: list[int]
    files_on: int | None = None

    @property
    def message_ids(self) -> list[int]:
        return [*self.answer_ids, *self.reasoning_ids]

    @property
    def spoken_under(self) -> int:
        return self.answer_ids[-1]


@dataclass(frozen=True)
class Replacing:
    """The answer a 🔄's new one replaces. Its messages go once the new answer is posted and
    confirmed (`remove`), as its exchange leaves history then (the gateway, at delivery): a
    regeneration refused or failing leaves it shown and remembered. A gateway that does not
    take it out of history itself (JobAccepted.replacing false: one older than that field)
    has the client do it once the generation is accepted (`forget`)."""

    remove: Callable[[], Awaitable[None]]
    forget: Callable[[], Awaitable[None]]


class AnswerEndings:
    """How `Poster`'s answers end: delivered and confirmed, or failed and told."""

    _gateway: GatewayClient
    _webhooks: WebhookPool
    _voice: VoicePoster | None
    _forbidden: ForbiddenChannels
    _notices: DenyNotices

    async def _remove_replaced(self, replacing: Replacing) -> None:
        """Deletes the answer a 🔄's one replaces (its exchange left history at delivery)."""
        try:
            await replacing.remove()
        except (aiohttp.ClientError, TimeoutError) as exc:  # Discord unreachable: logged
            log.warning("bot.replaced_not_deleted", error=type(exc).__name__)

    async def _delivered(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        stream: StreamedAnswer,
        replacing: Replacing | None = None,
        *,
        told: bool = True,
        posted: _Posted | None = None,
    ) -> None:
        """The answer is posted: confirmed to the gateway (a 🔄's: then the answer it
        replaces deleted, its exchange gone from history with the delivery), then spoken if
        asked. Its personality (or its user's data) deleted meanwhile, it is not delivered:
        it says so instead, or (not `told`: a scheduled turn) it goes, as when that happens
        while it streams; what it showed beyond its text goes with it (answer_extras)."""
        try:
            await self._gateway.confirm_delivery(answer.job_id, answer.message_ids)
        except TzurotError as err:
            if answer_deleted(err, accepted=True):  # kept nowhere; the one it replaces stays
                log.info("bot.answer_withdrawn", job_id=answer.job_id, reason=err.reason)
                answer.error_reason, answer.error_code = err.reason, err.code.name
                text_ids = stream.message_ids
                extras = [i for i in answer.message_ids if i not in text_ids]
                answer.message_ids = await self._failed(
                    stream, answer, err, told=told, accepted=True
                )
                files_on = posted.files_on if posted is not None else None
                await take_away(
                    self._webhooks,
                    channel,
                    extras,
                    files_on=files_on if files_on in answer.message_ids else None,
                )
                return
            # The gateway stayed away past the client's retries: the answer is posted, and
            # its preview notes let the gateway's sweep finish the job (and a 🔄's, delete
            # the answer it replaces: UnfinishedAnswer.replaced_message_ids).
            log.warning("bot.confirm_failed", job_id=answer.job_id, reason=err.reason)
            return
        if replacing is not None:
            await self._remove_replaced(replacing)
        if answer.speak and self._voice is not None and channel_key(channel) not in self._forbidden:
            # Delivered whole first, then spoken where it can be posted (speak_later checks
            # the permissions): no voice is paid for that cannot be posted.
            self._voice.speak_later(
                channel,
                answer.request.actor,
                answer.job_id,
                posted.spoken_under if posted is not None else answer.message_ids[-1],
                answer.shown,
            )

    async def _failed(
        self,
        stream: StreamedAnswer,
        answer: Answer,
        err: TzurotError,
        *,
        told: bool,
        accepted: bool,
    ) -> list[int]:
        """What the gateway's error leaves where the answer was; the ids that show it.
        `accepted`: the gateway had taken the job (its answer was under way)."""
        if told and answer_deleted(err, accepted=accepted):  # what showed it says so
            return await self._withhold(stream, err, answer.shown)
        if not told or personality_gone(err) or not self._notices.should_reply(err, answer.user_id):
            # A scheduled turn nobody asked for, a personality that is no more (nothing
            # speaks as it), a mute, or a block told already: silent.
            await self._finish_quietly(stream, "")
            return []
        return await self._finish_quietly(stream, error_reply(answer.shown, err))

    async def _withhold(
        self, stream: StreamedAnswer, err: TzurotError, personality: common.Personality
    ) -> list[int]:
        """The answer's personality, or its user's data, was deleted (errors.answer_deleted):
        the messages that show it are edited into why, as a restarted bot edits such a half
        answer; none is posted anew (nothing speaks as a deleted personality): none shown,
        nothing said."""
        if not stream.message_ids:
            return []
        return await self._finish_quietly(stream, deleted_notice(err, personality))

    async def _finish_quietly(self, stream: StreamedAnswer, text: str) -> list[int]:
        """The answer's messages made to show `text` ("": taken away); the ids that show
        it. What Discord refuses, or Discord out of reach, is logged: the handler goes on to
        the message's other addressees (as `post` does)."""
        try:
            return await stream.finish(text)
        except discord.HTTPException as exc:
            log.info("bot.error_reply_refused", status=exc.status, code=exc.code)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("bot.discord_unreachable", error=type(exc).__name__)
        return stream.message_ids

    async def _refused(
        self, channel: discord.abc.Messageable, exc: discord.HTTPException, *, tell: bool
    ) -> None:
        """Logs what Discord refused; `tell`: and tells the channel.

        A thread a moderator closed (archived: 50083) or locked (160005) while the answer
        streamed is not told: Discord takes no edit there, and a notice would reopen the
        thread (a message sent in an archived thread unarchives it) or be refused (locked).
        The answer stops where it was, as for any refusal mid-stream: what was delivered is
        confirmed, nothing more is posted (nor a new piece the bot holds back itself:
        `ThreadArchived`). The channel is not remembered as forbidden: a user's next message
        reopens the thread, and a locked one is turned away before generating (`post`)."""
        closed = exc.code in CLOSED_THREAD_CODES
        log.info("bot.post_refused", status=exc.status, code=exc.code, told=tell and not closed)
        if closed:
            log.info("bot.thread_closed", channel_id=channel_key(channel), code=exc.code)
            return
        if exc.code == UNKNOWN_CHANNEL:
            # The channel (or thread) was deleted, not its webhook: no notice can land there,
            # and nothing more is generated for it, nor a webhook looked for (or made) there.
            log.info("bot.channel_deleted", channel_id=channel_key(channel))
            self._forbidden.remember(channel_key(channel))
            return
        if exc.status == 403:
            self._forbidden.remember(channel_key(channel))
            # Webhooks are kept by the channel that holds them: a thread's parent.
            with contextlib.suppress(TypeError):
                self._webhooks.forget(channel_key(webhook_channel(channel)[0]))
        if tell:
            await self.notify(channel, refusal_text(exc))

    async def notify(self, channel: discord.abc.Messageable, text: str) -> None:
        """A short plain message from the bot itself; nothing escapes if Discord refuses it."""
        try:
            await channel.send(
                discord.utils.escape_mentions(text)[:2000],
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("bot.notice_refused", status=exc.status, code=exc.code)
