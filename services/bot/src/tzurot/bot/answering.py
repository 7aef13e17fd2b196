"""Posting one answer: checks it can be delivered, generates it through the gateway and
streams it into the channel through a webhook; how it ends (confirmed, or what Discord or the
gateway refused told) is its base's job, `answer_endings.AnswerEndings`.

A generation cut short by a restart in the mesh (a rollout stopping its gateway, a service
that died mid-answer) is asked for again, the same request: the gateway takes the same job up
again, and the new answer streams into the messages that showed the first. The user is told
to try again only when the retries (`generate_restart_retries`) run out. Meanwhile the half
answer shown says it is being taken up again (`answer_restarts.RECOVERING_LINE`), a line the
answer's next edit (taken up again, replayed, or the error) replaces."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import aiohttp
import discord
import structlog

from tzurot.bot.answer_endings import AnswerEndings, Replacing, _Posted
from tzurot.bot.answer_notes import with_notes
from tzurot.bot.answer_restarts import _CutShort, _show_recovering, restart_backoff
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.cadence import WebhookCadence, webhook_key
from tzurot.bot.config import BotSettings
from tzurot.bot.delivery import (
    ForbiddenChannels,
    ThreadArchived,
    archived_thread,
    channel_key,
    delivery_problem,
    locked_thread,
)
from tzurot.bot.errors import restarted
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.moderation import DenyNotices
from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.previews import PreviewNotes
from tzurot.bot.reasoning import post_reasoning, unmarked
from tzurot.bot.references import reply_quote
from tzurot.bot.skill_output import (
    DEFAULT_FILESIZE_LIMIT,
    discord_files,
    status_line,
    upload_batches,
)
from tzurot.bot.splitting import split_message
from tzurot.bot.voice import VoicePoster
from tzurot.bot.webhooks import WebhookLimitReached, WebhookPool
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)


class Poster(AnswerEndings):
    def __init__(
        self,
        gateway: GatewayClient,
        webhooks: WebhookPool,
        settings: BotSettings,
        answers: AnswerBook,
        voice: VoicePoster | None = None,
    ) -> None:
        self._gateway, self._webhooks, self._settings = gateway, webhooks, settings
        self._voice = voice
        self._answers = answers
        self._forbidden = ForbiddenChannels(settings.forbidden_channel_seconds)
        self._cadence = WebhookCadence(settings.stream_edit_interval_seconds)
        self._notices = DenyNotices(settings.deny_notice_cooldown_seconds)
        self._background: set[asyncio.Task[None]] = set()  # preview notes being sent
        self._answering: set[str] = set()  # the jobs this bot is streaming

    async def post(  # one answer: streamed, refused, quiet or the webhook cap
        self,
        channel: discord.abc.Messageable,
        message: discord.Message | None,
        personality: common.Personality,
        request: gw.GenerateRequest,
        user_id: int,
        *,
        quiet: Answer | None = None,
        replacing: Replacing | None = None,
        edited_at: datetime | None = None,
    ) -> None:
        """Checks the answer can be delivered, generates it, streams it into the channel;
        whatever Discord refuses is told to the user and what was delivered is confirmed.
        `quiet` (a scheduled turn): that answer is filled in, and failures are not told.
        `replacing` (a 🔄): the answer this one replaces is deleted once this one is posted
        and confirmed; a generation refused (its personality gone, no key...) or failing
        leaves it. `edited_at` (a 🔄 of an edited message): the user's edit `request` takes
        already (`Answer.edited_at`). In a thread locked to the bot nothing is generated and
        nothing said: Discord would refuse the notice as it refuses the bot's other messages
        there, and only a moderator can have written in it (logged; a scheduled turn is
        dropped as FORBIDDEN, which stops free will there)."""
        channel_id = channel_key(channel)
        locked = locked_thread(channel)
        if channel_id in self._forbidden or locked:
            log.info("bot.channel_forbidden", channel_id=channel_id, locked_thread=locked)
            if quiet is not None:
                quiet.error_reason = "FORBIDDEN"
            return
        problem = delivery_problem(channel)
        if problem is not None:
            if quiet is not None:
                quiet.error_reason = "FORBIDDEN"
                return
            await self.notify(channel, problem)
            return
        answer = quiet or Answer(
            personality, user_id, channel, request, shown=personality, edited_at=edited_at
        )
        # Not for a scheduled turn: its event comes back to this bot's successor by itself.
        prefix = reply_quote(message) if message is not None else ""
        preview = PreviewNotes(
            self._gateway, self._background, enabled=quiet is None, reply_header=prefix
        )
        stream = self._streamed(channel, answer, user_id, preview, prefix)
        try:
            await self._post_streamed(
                channel, answer, stream, preview, replacing, told=quiet is None
            )
        finally:
            self._answering.discard(answer.job_id)  # delivered, failed or given up

    async def _post_streamed(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        stream: StreamedAnswer,
        preview: PreviewNotes,
        replacing: Replacing | None,
        *,
        told: bool,
    ) -> None:
        """`post` once the answer can be delivered: generated, streamed, then confirmed; what
        the gateway or Discord refused told (not `told`: a scheduled turn, logged only)."""
        channel_id = channel_key(channel)
        webhook = webhook_key(channel)  # a thread's answers share its parent's webhook
        self._cadence.start(webhook)
        posted: _Posted | None = None
        try:
            # The webhook first: a channel at Discord's cap or refusing us costs no generation.
            await self._webhooks.for_channel_of(channel)
            posted = await self._stream(channel, answer, stream, preview, replacing, quiet=not told)
            answer.message_ids = posted.message_ids
        except TzurotError as err:
            log.info("bot.answer_failed", reason=err.reason, code=err.code.name)
            preview.closed(answer.job_id)  # the error is shown there: nothing to finish
            self._answering.discard(answer.job_id)
            accepted = bool(answer.job_id)  # the gateway took the job: its answer was under way
            answer.job_id = ""
            answer.error_reason = err.reason or err.code.name
            answer.error_code = err.code.name
            answer.message_ids = await self._failed(
                stream, answer, err, told=told, accepted=accepted
            )
            return
        except WebhookLimitReached as err:
            answer.error_reason = "WEBHOOK_LIMIT"
            if told:
                await self.notify(channel, str(err))
            return
        except discord.HTTPException as exc:
            answer.message_ids = stream.message_ids  # the part that was delivered
            answer.speak = False  # Discord refused the answer here: no voice paid for after
            await self._refused(channel, exc, tell=told)  # a scheduled turn: logged
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Discord unreachable (a dropped connection, a timeout): nothing can be told there
            # now. As for a refusal, what was delivered is confirmed; and the handler goes on
            # to the message's other addressees.
            log.warning("bot.discord_unreachable", error=type(exc).__name__)
            answer.message_ids = stream.message_ids
            answer.error_reason = "DISCORD_UNREACHABLE"
            answer.speak = False  # no voice would get through either
        finally:
            self._cadence.stop(webhook)
        self._answers.trim()
        if answer.job_id and answer.message_ids:
            self._answers.set_latest(channel_id, answer.personality.slug, answer)
            await self._delivered(channel, answer, stream, replacing, told=told, posted=posted)

    def answering(self, job_id: str) -> bool:
        """Whether this bot is answering that job now: streaming it, waiting to ask for it
        again after a restart cut it short, or confirming its delivery."""
        return job_id in self._answering

    async def notes_sent(self) -> None:
        """Waits for the preview notes under way to be sent (or to fail)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _streamed(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        user_id: int,
        preview: PreviewNotes,
        prefix: str,
    ) -> StreamedAnswer:
        """Posts, edits and deletes the answer's messages as it streams, the first starting
        with `prefix` (the reply header)."""
        channel_id, webhook = channel_key(channel), webhook_key(channel)
        mentions = self._mentions(user_id)

        async def send(text: str) -> int:
            if archived_thread(channel):  # closed by a moderator meanwhile: not reopened
                raise ThreadArchived(channel_id)
            sent = await self._webhooks.send(
                channel,
                text,
                username=answer.shown.display_name,
                avatar_url=answer.shown.avatar_url or None,
                mentions=mentions,
                suppress_embeds=answer.shown.suppress_embeds,
            )
            self._answers.remember(sent.id, answer)  # known at once, for replies and reactions
            preview.shown(answer.job_id, sent.id)  # a restarted bot can finish it
            return sent.id

        async def edit(message_id: int, text: str) -> None:
            await self._webhooks.edit(channel, message_id, text, mentions=mentions)

        async def delete(message_id: int) -> None:
            if await self._webhooks.delete(channel, message_id):  # else it still shows
                preview.gone(answer.job_id, message_id)

        return StreamedAnswer(
            send,
            edit,
            delete,
            interval=lambda: self._cadence.interval(webhook),
            prefix=prefix,
            on_limited=lambda wait: self._cadence.limited(webhook, wait),
        )

    async def post_text(
        self, channel: discord.abc.Messageable, personality: common.Personality, text: str
    ) -> list[int]:
        """Text the personality says without generating it (a greeting), in 2000-character
        pieces; the ids posted, none when the bot cannot post here. Raises what Discord
        refuses (the caller acknowledges)."""
        if channel_key(channel) in self._forbidden or delivery_problem(channel) is not None:
            return []
        ids: list[int] = []
        for piece in split_message(unmarked(text)):  # never taken for a reasoning
            sent = await self._webhooks.send(
                channel,
                piece,
                username=personality.display_name,
                avatar_url=personality.avatar_url or None,
                mentions=discord.AllowedMentions.none(),
                suppress_embeds=personality.suppress_embeds,
            )
            ids.append(sent.id)
        return ids

    async def _stream(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        stream: StreamedAnswer,
        preview: PreviewNotes,
        replacing: Replacing | None = None,
        *,
        quiet: bool = False,
    ) -> _Posted:
        """Generates and streams the answer; returns the messages posted. One cut
        short by a restart in the mesh is asked for again, `generate_restart_retries` times
        at most (not a scheduled turn: its event is sent again later), into the same
        messages. Meanwhile they stay noted as its preview: should this bot stop while it
        waits, the gateway hands the half answer over as cut off by a restart. A hand-over
        of it met while this bot is still at it is left alone (`answering`)."""
        retries = 0 if quiet else self._settings.generate_restart_retries
        retry = 0
        while True:
            try:
                return await self._generate(channel, answer, stream, preview, replacing)
            except _CutShort as cut:
                retry += 1
                if retry > retries:
                    raise cut.error from None
                wait = restart_backoff(retry)
                log.info(
                    "bot.answer_restarting",
                    job_id=answer.job_id,
                    reason=cut.error.reason,
                    retry=retry,
                    wait_seconds=round(wait, 2),
                )
                # The gateway may hold the ask until the cut run's lease ends (its gateway
                # killed: up to its duplicate wait, 25 s): the half answer says meanwhile
                # that it is being taken up again, until the next sync replaces the line.
                await asyncio.gather(asyncio.sleep(wait), _show_recovering(stream))

    async def _generate(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        stream: StreamedAnswer,
        preview: PreviewNotes,
        replacing: Replacing | None,
    ) -> _Posted:
        """One generation of the answer, streamed, then its files and its reasoning when the
        gateway sent them (the user asked to see it): the messages posted, each noted with the
        answer's preview (a restarted bot keeps them with the answer handed over whole, or
        deletes them with one withheld: tzurot.bot.unfinished). A gateway that does not replace
        the exchange a 🔄 replaces has it forgotten once accepted. Raises `_CutShort` when
        a restart in the mesh ended it and Discord refused nothing."""
        text = reasoning = ""
        files: list[common.GeneratedFile] = []
        refused: discord.HTTPException | None = None
        # Closed on every way out (a failed post, a cancelled task): the gateway's call is
        # cancelled at once, not when the garbage collector finds it.
        events = contextlib.aclosing(self._gateway.generate(answer.request))
        try:
            async with contextlib.AsyncExitStack() as typing, events as generated:
                async for event in generated:
                    kind = event.WhichOneof("event")
                    if kind == "accepted":
                        await self._accepted(event.accepted, answer, replacing)
                        self._answering.add(answer.job_id)
                        # Typing only once the gateway took the message: a refusal (a mute)
                        # shows nothing at all.
                        await typing.enter_async_context(channel.typing())
                    elif kind == "chunk":
                        text += event.chunk.text
                        if refused is None:
                            try:
                                await stream.update(text)
                            except discord.HTTPException as exc:
                                # Stop posting, but let the (paid) generation finish, so what
                                # was delivered can be confirmed and kept in history.
                                refused = exc
                    elif kind == "activity" and refused is None:
                        try:
                            await self._working(channel, stream, answer.shown, event.activity, text)
                        except discord.HTTPException as exc:
                            refused = exc  # as for a chunk: the paid generation finishes
                    elif kind == "finished":
                        finished = event.finished
                        # Shown with the answer, never in history (it keeps `content`).
                        text = with_notes(
                            finished.content,
                            finish_reason=finished.finish_reason,
                            footer=finished.footer,
                        )
                        reasoning = finished.reasoning
                        files = list(finished.files)
                        answer.speak = finished.speak
        except TzurotError as err:
            if refused is None and restarted(err):
                raise _CutShort(err) from err
            raise
        if refused is not None:
            raise refused
        shown = await stream.finish(text)
        files_on, more = await self._attach(channel, answer, shown, files, preview)
        ids = shown + more
        if not ids:  # nothing shown: no reasoning under it
            return _Posted(ids, [])
        reasoning_ids = await post_reasoning(
            self._webhooks, self._answers, channel, answer, reasoning, preview=preview
        )
        return _Posted(ids, reasoning_ids, files_on)

    @staticmethod
    async def _accepted(
        accepted: gw.JobAccepted, answer: Answer, replacing: Replacing | None
    ) -> None:
        """The gateway took the message: its job, and who answers it."""
        if replacing is not None and not accepted.replacing:
            await replacing.forget()  # an older gateway: out of history now
        answer.job_id = accepted.job_id
        if accepted.HasField("personality"):
            answer.shown = accepted.personality

    async def _attach(
        self,
        channel: discord.abc.Messageable,
        answer: Answer,
        message_ids: list[int],
        files: list[common.GeneratedFile],
        preview: PreviewNotes,
    ) -> tuple[int | None, list[int]]:
        """The answer's files (generated images) become attachments: as many as one message
        takes on its last message, the others in messages after it (every file drawn was
        paid for, each noted with the preview); that last message (None: no file), and the
        ids of the messages after it."""
        guild = getattr(channel, "guild", None)
        limit = getattr(guild, "filesize_limit", DEFAULT_FILESIZE_LIMIT)
        batches = upload_batches(files, filesize_limit=limit) if message_ids else []
        if not batches:
            return None, []
        await self._webhooks.attach(channel, message_ids[-1], discord_files(batches[0]))
        more: list[int] = []
        for batch in batches[1:]:
            sent = await self._webhooks.send(
                channel,
                "",
                username=answer.shown.display_name,
                avatar_url=answer.shown.avatar_url or None,
                mentions=discord.AllowedMentions.none(),
                files=discord_files(batch),
            )
            self._answers.remember(sent.id, answer)  # part of the answer, for replies
            preview.shown(answer.job_id, sent.id)  # a restarted bot keeps it, or deletes it
            more.append(sent.id)
        return message_ids[-1], more

    async def _working(
        self,
        channel: discord.abc.Messageable,
        stream: StreamedAnswer,
        shown: common.Personality,
        activity: common.SkillActivity,
        text: str,
    ) -> None:
        """A skill started: typing again, and a short status line until the answer comes."""
        with contextlib.suppress(discord.HTTPException):
            await channel.typing()  # one more typing event: skills can outlast the last one
        if not text.strip():
            await stream.update(status_line(shown.display_name, activity.skill))

    def _mentions(self, user_id: int) -> discord.AllowedMentions:
        """Never @everyone/@here or roles; users only the one answered, when configured."""
        users: list[discord.abc.Snowflake] | bool = (
            [discord.Object(user_id)] if self._settings.ping_answered_user else False
        )
        return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=False)
