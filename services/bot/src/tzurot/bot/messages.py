"""One Discord message, from `on_message` to the answers posted as personalities.

Who is addressed: `@Name`/`@alias` mentions (each answers, in order), else a reply to one of
our webhook messages, else the personality activated in the channel. Bots and our own webhooks
are ignored, except PluralKit-proxied messages, which act for the human PluralKit names.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import discord
import grpc
import structlog

from tzurot.bot.addressing import Addressed, match_mentions, strip_mentions
from tzurot.bot.attachments import AttachmentLimits, to_attachment, triage
from tzurot.bot.cadence import ChannelCadence
from tzurot.bot.config import BotSettings
from tzurot.bot.dedup import SeenMessages
from tzurot.bot.delivery import ForbiddenChannels, delivery_problem, refusal_text
from tzurot.bot.errors import error_reply
from tzurot.bot.gateway_client import GatewayClient, actor_of, location_of, unimplemented
from tzurot.bot.mentions import ChannelInfo, resolve_mentions
from tzurot.bot.moderation import DenyNotices
from tzurot.bot.pluralkit import PluralKit
from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.proxied import ProxyWatch, reply_embed_target
from tzurot.bot.references import REPLY_QUOTE_PREFIX, collect_references
from tzurot.bot.skill_output import discord_files, status_line
from tzurot.bot.webhooks import WebhookLimitReached, WebhookPool
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

DELETE_EMOJI = "❌"
REGENERATE_EMOJI = "🔄"


@dataclass
class Answer:
    """What the bot posted for one (message, personality): for replies and reactions."""

    personality: common.Personality
    user_id: int
    channel: discord.abc.Messageable
    request: gw.GenerateRequest
    message_ids: list[int] = field(default_factory=list)
    job_id: str = ""
    shown: common.Personality = field(default_factory=common.Personality)  # as resolved
    # Why nothing was posted, when a scheduled turn failed quietly (e.g. CHAIN_INTERRUPTED).
    error_reason: str = ""


class MessageFlow:
    def __init__(
        self,
        client: discord.Client,
        gateway: GatewayClient,
        webhooks: WebhookPool,
        settings: BotSettings,
        pluralkit: PluralKit | None = None,
    ) -> None:
        self._client, self._gateway, self._webhooks = client, gateway, webhooks
        self._settings = settings
        self._proxies = (
            None
            if pluralkit is None
            else ProxyWatch(
                pluralkit,
                hold=settings.pluralkit_hold_seconds,
                capacity=settings.seen_messages_capacity,
            )
        )
        self._seen = SeenMessages(settings.seen_messages_capacity)
        self._answers: OrderedDict[int, Answer] = OrderedDict()
        self._latest: dict[tuple[int, str], Answer] = {}
        self._deleted: SeenMessages = SeenMessages(settings.seen_messages_capacity)
        self._personalities: tuple[float, list[common.Personality]] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._limits = AttachmentLimits(settings.max_image_bytes, settings.max_audio_bytes)
        self._forbidden = ForbiddenChannels(settings.forbidden_channel_seconds)
        self._cadence = ChannelCadence(settings.stream_edit_interval_seconds)
        self._notices = DenyNotices(settings.deny_notice_cooldown_seconds)

    # ---- events ----

    async def on_message(self, message: discord.Message) -> None:
        with self._busy():
            try:
                await self._on_message(message)
            except (discord.HTTPException, TzurotError) as exc:
                # Whatever Discord or the gateway refused is told where it happens; the rest is
                # logged here, never raised into discord.py's event loop.
                log.warning("bot.message_failed", error=type(exc).__name__)

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Counts work in flight, so a stop can wait for answers being posted."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def idle(self, grace: float) -> None:
        """Waits (at most `grace` s) until no message is being answered: for a clean stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)

    async def _on_message(self, message: discord.Message) -> None:
        actor = await self._actor(message)
        if actor is None:
            return
        targets, round_id = await self._targets(message, actor)
        if not targets:
            return
        if (
            self._proxies is not None
            and message.webhook_id is None
            and await self._proxies.original_was_proxied(message.id, self._deleted.__contains__)
        ):
            return  # PluralKit reposted it: the repost is answered, as this human
        request, notes = await self._request_base(message, actor)
        for personality, content in targets:
            one = gw.GenerateRequest()
            one.CopyFrom(request)
            one.personality = personality.slug or personality.display_name
            one.content = "\n".join([self._readable_text(message, content), *notes])
            one.idempotency_key = f"{message.id}:{one.personality}"
            one.round_id = round_id
            await self._answer(message, personality, one)

    async def _actor(self, message: discord.Message) -> common.Actor | None:
        """Who the message speaks for, or None when it is not for us (or seen already)."""
        me = self._client.user
        ignored = (
            message.guild is None
            or self._is_ours(message)
            or (me is not None and message.author.id == me.id)
            or (message.webhook_id is None and message.author.bot)
            # Replies to other apps' interactions come through their application webhook.
            or message.interaction_metadata is not None
        )
        if ignored or not self._seen.first_time(message.id):
            return None
        if message.webhook_id is not None:
            if self._proxies is None:
                return None
            # Only a message addressing a personality is worth asking PluralKit about.
            if not await self._addressed(message, actor_of(message.author)):
                return None
            sender = await self._proxies.sender_of_repost(message.id)
            return actor_of(message.author, user_id=sender) if sender else None
        return actor_of(message.author)

    def answer_for(self, message_id: int) -> Answer | None:
        """What the bot posted as `message_id` (for Inspect), if it still remembers."""
        return self._answers.get(message_id)

    async def on_edit(self, message: discord.Message) -> None:
        with self._busy():
            await self._on_edit(message)

    async def _on_edit(self, message: discord.Message) -> None:
        """A user edited a message a personality answered: its turn in history follows."""
        if message.author.bot or message.webhook_id is not None or message.guild is None:
            return
        key = str(message.id)
        answered = next(
            (a for a in list(self._answers.values()) if key in a.request.message_ids), None
        )
        if answered is None:
            return
        actor = actor_of(message.author)
        addressed = await self._addressed(message, actor)
        content = next(
            (text for p, text in addressed if p.slug == answered.personality.slug),
            message.content,
        )
        try:
            await self._gateway.call(
                self._gateway.stub.EditMessage(
                    gw.EditMessageRequest(
                        actor=actor,
                        message_id=key,
                        content=self._readable_text(message, content),
                    )
                )
            )
        except TzurotError as err:
            log.info("bot.edit_not_applied", reason=err.reason, code=err.code.name)

    def on_delete(self, message_id: int) -> None:
        self._deleted.first_time(message_id)
        if self._proxies is not None:
            self._proxies.deleted(message_id)

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        with self._busy():
            await self._on_reaction(payload)

    async def _on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if emoji not in {DELETE_EMOJI, REGENERATE_EMOJI} or payload.member is None:
            return
        answer = await self._answer_of(payload)
        if answer is None or payload.user_id != answer.user_id:
            return
        for message_id in answer.message_ids:
            self._answers.pop(message_id, None)
            try:
                await self._webhooks.delete(answer.channel, message_id)
            except discord.NotFound:
                pass  # deleted already (a moderator, or a second reaction)
            except (discord.HTTPException, TypeError, WebhookLimitReached) as exc:
                log.info("bot.delete_refused", error=type(exc).__name__)
                return
        await self._forget_turn(answer)
        if emoji == REGENERATE_EMOJI:
            await self._regenerate(answer, payload.message_id)

    async def _answer_of(self, payload: discord.RawReactionActionEvent) -> Answer | None:
        """The answer `payload.message_id` belongs to, found through the gateway (whichever bot
        process posted it, before or after a restart); error replies, which have no job, only
        from this process's memory."""
        assert payload.member is not None
        guild = payload.member.guild
        channel = guild.get_channel_or_thread(payload.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return None
        job = await self._gateway.job_for_message(actor_of(payload.member), payload.message_id)
        if job is None:
            return self._answers.get(payload.message_id)
        local = self._answers.get(payload.message_id)
        if local is not None and local.job_id == job.id:
            return local
        request = gw.GenerateRequest(
            actor=actor_of(payload.member, user_id=job.author_id),
            location=location_of(channel, guild),
            idempotency_key=job.idempotency_key,
            message_ids=list(job.request_message_ids),
        )
        return Answer(
            common.Personality(id=job.personality_id),
            int(job.author_id),
            channel,
            request,
            message_ids=[int(m) for m in job.delivered_message_ids],
            job_id=job.id,
        )

    async def _regenerate(self, answer: Answer, reacted_id: int) -> None:
        """A new answer to the same message, as if it had just been sent."""
        request = gw.GenerateRequest()
        if answer.request.content:  # this process still has the whole request
            request.CopyFrom(answer.request)
            personality = answer.personality
        else:  # rebuilt from the original message, fetched from Discord
            again = await self._rebuilt_request(answer)
            if again is None:
                return
            personality, request = again
        # A new key each time, counted from the answer's own key: a regenerated answer
        # (…#regen1) regenerates as …#regen2, never replaying an earlier job.
        base, _, count = answer.request.idempotency_key.partition("#regen")
        request.idempotency_key = f"{base}#regen{int(count or 0) + 1}"
        await self._post(answer.channel, None, personality, request, answer.user_id)

    async def _rebuilt_request(
        self, answer: Answer
    ) -> tuple[common.Personality, gw.GenerateRequest] | None:
        if not answer.request.message_ids:
            return None
        try:
            original = await answer.channel.fetch_message(int(answer.request.message_ids[0]))
        except discord.HTTPException:
            return None
        actor = answer.request.actor
        for personality, content in await self._addressed(original, actor):
            if personality.id == answer.personality.id:
                request, notes = await self._request_base(original, actor)
                request.personality = personality.slug or personality.display_name
                request.content = "\n".join([self._readable_text(original, content), *notes])
                return personality, request
        return None

    # ---- who is addressed ----

    async def _addressed(
        self, message: discord.Message, actor: common.Actor
    ) -> list[tuple[common.Personality, str]]:
        """Who the message addresses, with the text each gets: mentions, else a reply to one
        of our answers, else the channel's (first) activated personality."""
        explicit = await self._explicit(message, actor)
        if explicit:
            return explicit
        active = await self._gateway.activation(location_of(message.channel, message.guild))
        return [(active, message.content)] if active is not None else []

    async def _targets(
        self, message: discord.Message, actor: common.Actor
    ) -> tuple[list[tuple[common.Personality, str]], str]:
        """Who answers a new message, in order, and its group round: mentions and replies
        first; else the channel's activated personalities as the gateway picks them
        (PlanChannelReply, which also starts the round); else the activated one."""
        explicit = await self._explicit(message, actor)
        if explicit:
            return explicit, ""
        where = location_of(message.channel, message.guild)
        planned = await self._gateway.plan_reply(actor, where, message.content, str(message.id))
        if planned is not None:
            round_id, speakers = planned
            return [(p, message.content) for p in speakers], round_id
        return await self._addressed(message, actor), ""

    async def _explicit(
        self, message: discord.Message, actor: common.Actor
    ) -> list[tuple[common.Personality, str]]:
        content = message.content
        limit = self._settings.max_personalities_per_message
        mentions = await self._gateway.resolve_mentions(actor, content, limit)
        if mentions is not None:
            spans = [(m.personality, m.matched_text, m.offset) for m in mentions]
        else:
            found = match_mentions(content, await self._known(actor), limit)
            spans = [(a.personality, a.matched_text, a.offset) for a in found]
        if spans:
            stripped = strip_mentions(content, [Addressed(p, t, o) for p, t, o in spans])
            return [(p, stripped) for p, _, _ in spans]
        replied = await self._replied_personality(message, actor)
        if replied is not None:
            return [(replied, content)]
        return []

    async def _known(self, actor: common.Actor) -> list[common.Personality]:
        cached = self._personalities
        now = time.monotonic()
        if cached is None or now - cached[0] > self._settings.personality_cache_seconds:
            cached = (now, await self._gateway.personalities(actor))
            self._personalities = cached
        return cached[1]

    async def _replied_personality(
        self, message: discord.Message, actor: common.Actor
    ) -> common.Personality | None:
        ref = message.reference
        target: discord.Message | None = None
        if ref is not None and ref.message_id is not None:
            target_id = ref.message_id
            target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        elif message.webhook_id is not None and (found := reply_embed_target(message)):
            target_id = found[1]  # a reply made through PluralKit: its reply embed
            target = await self._readable(message, found[0], target_id)
        else:
            return None
        known = self._answers.get(target_id)
        if known is not None:
            return known.personality
        if target is None or target.webhook_id is None:
            return None
        if self._is_ours(target):
            return await self._gateway.personality(actor, target.author.display_name)
        return None

    def _is_ours(self, message: discord.Message) -> bool:
        """Posted by this bot's application (its webhooks carry its application id) or one of
        the webhooks it uses: no API call, and never a webhook created to find out."""
        app_id = self._client.application_id
        return (app_id is not None and message.application_id == app_id) or self._webhooks.owns(
            message.webhook_id
        )

    # ---- what is sent ----

    async def _request_base(
        self, message: discord.Message, actor: common.Actor
    ) -> tuple[gw.GenerateRequest, list[str]]:
        """What every addressed personality gets (content is set per personality), and notes
        about attachments left out."""
        attachments, notes = triage([to_attachment(a) for a in message.attachments], self._limits)
        references = await collect_references(
            message,
            max_depth=self._settings.max_reference_depth,
            max_count=self._settings.max_referenced_messages,
            resolve=lambda cid, mid: self._readable(message, cid, mid),
        )
        request = gw.GenerateRequest(
            actor=actor,
            location=location_of(message.channel, message.guild),
            message_ids=[str(message.id)],
            references=references,
            attachments=attachments,
            mentions=self._mentioned(message),
        )
        return request, notes

    def _mentioned(self, message: discord.Message) -> list[gw.MessageMention]:
        """The channels, roles and users the message mentions, as the prompt should know them."""
        guild = message.guild
        if guild is None:
            return []
        found: list[gw.MessageMention] = []
        for cid in message.raw_channel_mentions[: self._settings.max_channel_mentions]:
            channel = guild.get_channel_or_thread(cid)
            if channel is not None:
                topic = getattr(channel, "topic", None) or ""
                found.append(
                    gw.MessageMention(
                        kind="channel", id=str(cid), name=channel.name, description=topic
                    )
                )
        for rid in message.raw_role_mentions[: self._settings.max_role_mentions]:
            role = guild.get_role(rid)
            if role is not None:
                found.append(gw.MessageMention(kind="role", id=str(rid), name=role.name))
        me = self._client.user
        for user in message.mentions[:5]:
            if me is None or user.id != me.id:
                found.append(
                    gw.MessageMention(kind="user", id=str(user.id), name=user.display_name)
                )
        return found

    def _readable_text(self, message: discord.Message, text: str) -> str:
        """`text` with channel, role and user mentions as names (and channel topics)."""
        guild = message.guild
        assert guild is not None  # on_message returns early for DMs

        def channel_info(cid: int) -> ChannelInfo | None:
            ch = guild.get_channel_or_thread(cid)
            return ChannelInfo(ch.name, getattr(ch, "topic", None)) if ch else None

        def role_name(rid: int) -> str | None:
            role = guild.get_role(rid)
            return role.name if role else None

        def user_name(uid: int) -> str | None:
            member = guild.get_member(uid) or discord.utils.get(message.mentions, id=uid)
            return member.display_name if member else None

        return resolve_mentions(
            text,
            channel=channel_info,
            role=role_name,
            user=user_name,
            max_channels=self._settings.max_channel_mentions,
            max_roles=self._settings.max_role_mentions,
        )

    async def _readable(
        self, message: discord.Message, channel_id: int, message_id: int
    ) -> discord.Message | None:
        """The message if the author of `message` may read it; links elsewhere are skipped."""
        guild = message.guild
        channel = guild.get_channel_or_thread(channel_id) if guild else None
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return None
        author = message.author
        if isinstance(author, discord.Member):
            perms = channel.permissions_for(author)
            if not (perms.view_channel and perms.read_message_history):
                return None
        try:
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            return None

    async def _answer(
        self, message: discord.Message, personality: common.Personality, request: gw.GenerateRequest
    ) -> None:
        # The human it speaks for: the author, or the one behind a PluralKit proxy.
        user_id = int(request.actor.user_id or message.author.id)
        await self._post(message.channel, message, personality, request, user_id)

    async def post_scheduled(
        self,
        channel: discord.abc.Messageable,
        personality: common.Personality,
        request: gw.GenerateRequest,
    ) -> Answer:
        """A turn the gateway scheduled (free will, a chain reply): posted like any answer,
        but a failure posts nothing (nobody asked; `error_reason` says why)."""
        answer = Answer(personality, 0, channel, request, shown=personality)
        with self._busy():
            await self._post(channel, None, personality, request, 0, quiet=answer)
        return answer

    async def _post(  # one answer: streamed, refused, quiet or the webhook cap
        self,
        channel: discord.abc.Messageable,
        message: discord.Message | None,
        personality: common.Personality,
        request: gw.GenerateRequest,
        user_id: int,
        *,
        quiet: Answer | None = None,
    ) -> None:
        """Checks the answer can be delivered, generates it, streams it into the channel;
        whatever Discord refuses is told to the user and what was delivered is confirmed.
        `quiet` (a scheduled turn): that answer is filled in, and failures are not told."""
        channel_id = _channel_key(channel)
        if channel_id in self._forbidden:
            log.info("bot.channel_forbidden", channel_id=channel_id)
            if quiet is not None:
                quiet.error_reason = "FORBIDDEN"
            return
        problem = delivery_problem(channel)
        if problem is not None:
            if quiet is not None:
                quiet.error_reason = "FORBIDDEN"
                return
            await self._notify(channel, problem)
            return
        answer = quiet or Answer(personality, user_id, channel, request, shown=personality)
        mentions = self._mentions(user_id)

        async def send(text: str) -> int:
            sent = await self._webhooks.send(
                channel,
                text,
                username=answer.shown.display_name,
                avatar_url=answer.shown.avatar_url or None,
                mentions=mentions,
            )
            self._answers[sent.id] = answer  # known at once, for replies and reactions
            return sent.id

        async def edit(message_id: int, text: str) -> None:
            await self._webhooks.edit(channel, message_id, text, mentions=mentions)

        async def delete(message_id: int) -> None:
            await self._webhooks.delete(channel, message_id)

        prefix = _reply_quote(message) if message is not None else ""
        stream = StreamedAnswer(
            send,
            edit,
            delete,
            interval=lambda: self._cadence.interval(channel_id),
            prefix=prefix,
            on_limited=lambda wait: self._cadence.limited(channel_id, wait),
        )
        self._cadence.start(channel_id)
        try:
            # The webhook first: a channel at Discord's cap or refusing us costs no generation.
            await self._webhooks.for_channel_of(channel)
            answer.message_ids = await self._stream(channel, answer, stream)
        except TzurotError as err:
            log.info("bot.answer_failed", reason=err.reason, code=err.code.name)
            answer.job_id = ""
            answer.error_reason = err.reason or err.code.name
            if quiet is not None or not self._notices.should_reply(err, user_id):
                # A scheduled turn nobody asked for, a mute, or a block told already: silent.
                await self._finish_quietly(stream, "")
                return
            answer.message_ids = await self._finish_quietly(stream, error_reply(answer.shown, err))
        except WebhookLimitReached as err:
            answer.error_reason = "WEBHOOK_LIMIT"
            if quiet is None:
                await self._notify(channel, str(err))
            return
        except discord.HTTPException as exc:
            answer.message_ids = stream.message_ids  # the part that was delivered
            await self._refused(channel, exc)
        finally:
            self._cadence.stop(channel_id)
        while len(self._answers) > self._settings.seen_messages_capacity:
            self._answers.popitem(last=False)
        if answer.job_id and answer.message_ids:
            self._latest[(channel_id, personality.slug)] = answer
            await self._gateway.confirm_delivery(answer.job_id, answer.message_ids)

    async def _stream(
        self, channel: discord.abc.Messageable, answer: Answer, stream: StreamedAnswer
    ) -> list[int]:
        """Generates and streams the answer; returns the ids of the messages posted."""
        text = ""
        files: list[common.GeneratedFile] = []
        refused: discord.HTTPException | None = None
        async with contextlib.AsyncExitStack() as typing:
            async for event in self._gateway.generate(answer.request):
                kind = event.WhichOneof("event")
                if kind == "accepted":
                    # Typing only once the gateway took the message: a refusal (a mute)
                    # shows nothing at all.
                    await typing.enter_async_context(channel.typing())
                    answer.job_id = event.accepted.job_id
                    if event.accepted.HasField("personality"):
                        answer.shown = event.accepted.personality
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
                    await self._working(channel, stream, answer.shown, event.activity, text)
                elif kind == "finished":
                    text = event.finished.content
                    if event.finished.footer:  # shown under the answer, never in history
                        text += f"\n-# {event.finished.footer}"
                    files = list(event.finished.files)
        if refused is not None:
            raise refused
        ids = await stream.finish(text)
        await self._attach(channel, ids, files)
        return ids

    async def _attach(
        self,
        channel: discord.abc.Messageable,
        message_ids: list[int],
        files: list[common.GeneratedFile],
    ) -> None:
        """The answer's files (generated images) become attachments of its last message."""
        if files and message_ids:
            await self._webhooks.attach(channel, message_ids[-1], discord_files(files))

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

    async def _finish_quietly(self, stream: StreamedAnswer, text: str) -> list[int]:
        try:
            return await stream.finish(text)
        except discord.HTTPException as exc:
            log.info("bot.error_reply_refused", status=exc.status, code=exc.code)
            return stream.message_ids

    async def _refused(self, channel: discord.abc.Messageable, exc: discord.HTTPException) -> None:
        log.info("bot.post_refused", status=exc.status, code=exc.code)
        if exc.status == 403:
            self._forbidden.remember(_channel_key(channel))
            self._webhooks.forget(_channel_key(channel))
        await self._notify(channel, refusal_text(exc))

    async def _notify(self, channel: discord.abc.Messageable, text: str) -> None:
        """A short plain message from the bot itself; nothing escapes if Discord refuses it."""
        try:
            await channel.send(
                discord.utils.escape_mentions(text)[:2000],
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("bot.notice_refused", status=exc.status, code=exc.code)

    async def _forget_turn(self, answer: Answer) -> None:
        """Removes the answer's exchange from history, whether it is the latest one or not."""
        key = (_channel_key(answer.channel), answer.personality.slug)
        latest = self._latest.get(key) is answer
        if latest:
            del self._latest[key]
        if not answer.job_id or not answer.message_ids:
            return  # an error reply: no exchange was stored
        try:
            await self._gateway.call(
                self._gateway.stub.DeleteExchange(
                    gw.DeleteExchangeRequest(
                        actor=answer.request.actor, message_id=str(answer.message_ids[0])
                    )
                )
            )
        except TzurotError as err:
            if err.code is grpc.StatusCode.NOT_FOUND:  # never stored, or already gone
                return
            if not unimplemented(err):
                raise
            if latest:  # a gateway without DeleteExchange: the latest one at least
                await self._undo_last(answer)

    async def _undo_last(self, answer: Answer) -> None:
        try:
            await self._gateway.call(
                self._gateway.stub.UndoLastExchange(
                    gw.UndoLastExchangeRequest(
                        actor=answer.request.actor,
                        location=answer.request.location,
                        personality=answer.personality.slug,
                    )
                )
            )
        except TzurotError as err:
            if not unimplemented(err):
                raise


def _channel_key(channel: discord.abc.Messageable) -> int:
    return int(getattr(channel, "id", 0))


def _reply_quote(message: discord.Message) -> str:
    """Webhooks cannot reply natively: a small quoted line with a jump link instead."""
    snippet = " ".join(message.content.split())
    if len(snippet) > 60:
        snippet = snippet[:59] + "…"
    snippet = (
        discord.utils.escape_mentions(discord.utils.escape_markdown(snippet)) or "(attachment)"
    )
    return (
        f"{REPLY_QUOTE_PREFIX} **{message.author.display_name}** {snippet} · {message.jump_url}\n"
    )
