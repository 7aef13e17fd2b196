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
from tzurot.bot.config import BotSettings
from tzurot.bot.dedup import SeenMessages
from tzurot.bot.errors import error_reply
from tzurot.bot.gateway_client import GatewayClient, actor_of, location_of, unimplemented
from tzurot.bot.mentions import ChannelInfo, resolve_mentions
from tzurot.bot.moderation import DenyNotices
from tzurot.bot.pluralkit import PluralKit
from tzurot.bot.posting import StreamedAnswer
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
        self._settings, self._pluralkit = settings, pluralkit
        self._seen = SeenMessages(settings.seen_messages_capacity)
        self._answers: OrderedDict[int, Answer] = OrderedDict()
        self._latest: dict[tuple[int, str], Answer] = {}
        self._deleted: SeenMessages = SeenMessages(settings.seen_messages_capacity)
        self._personalities: tuple[float, list[common.Personality]] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._limits = AttachmentLimits(settings.max_image_bytes, settings.max_audio_bytes)
        self._notices = DenyNotices(settings.deny_notice_cooldown_seconds)

    # ---- events ----

    async def on_message(self, message: discord.Message) -> None:
        with self._busy():
            await self._on_message(message)

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
        targets = await self._addressed(message, actor)
        if not targets:
            return
        request, notes = await self._request_base(message, actor)
        for personality, content in targets:
            one = gw.GenerateRequest()
            one.CopyFrom(request)
            one.personality = personality.slug or personality.display_name
            one.content = "\n".join([self._readable_text(message, content), *notes])
            one.idempotency_key = f"{message.id}:{one.personality}"
            await self._answer(message, personality, one)

    async def _actor(self, message: discord.Message) -> common.Actor | None:
        """Who the message speaks for, or None when it is not for us (or seen already)."""
        me = self._client.user
        ignored = (
            message.guild is None
            or self._webhooks.owns(message.webhook_id)
            or (me is not None and message.author.id == me.id)
            or (message.webhook_id is None and message.author.bot)
        )
        if ignored or not self._seen.first_time(message.id):
            return None
        if message.webhook_id is not None:
            if self._pluralkit is None or not await self._is_foreign_webhook(message):
                return None
            sender = await self._pluralkit.sender_of(message.id)
            return actor_of(message.author, user_id=sender) if sender else None
        if self._pluralkit is not None and self._settings.pluralkit_grace_seconds > 0:
            # PluralKit deletes and reposts a proxied message: answer the repost only.
            await asyncio.sleep(self._settings.pluralkit_grace_seconds)
            if message.id in self._deleted:
                return None
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

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        with self._busy():
            await self._on_reaction(payload)

    async def _on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        answer = self._answers.get(payload.message_id)
        if answer is None or payload.user_id != answer.user_id:
            return
        emoji = str(payload.emoji)
        if emoji not in {DELETE_EMOJI, REGENERATE_EMOJI}:
            return
        for message_id in answer.message_ids:
            self._answers.pop(message_id, None)
            await self._webhooks.delete(answer.channel, message_id)
        await self._forget_turn(answer)
        if emoji == REGENERATE_EMOJI:
            request = gw.GenerateRequest()
            request.CopyFrom(answer.request)
            # A new key each time, counted from the answer's own key: a regenerated answer
            # (…#regen1) regenerates as …#regen2, never replaying an earlier job.
            base, _, count = answer.request.idempotency_key.partition("#regen")
            request.idempotency_key = f"{base}#regen{int(count or 0) + 1}"
            await self._post(answer.channel, None, answer.personality, request, answer.user_id)

    # ---- who is addressed ----

    async def _addressed(
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
        active = await self._gateway.activation(location_of(message.channel, message.guild))
        if active is not None:
            return [(active, content)]
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
        if ref is None or ref.message_id is None:
            return None
        known = self._answers.get(ref.message_id)
        if known is not None:
            return known.personality
        target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        if target is None or target.webhook_id is None:
            return None
        if self._webhooks.owns(target.webhook_id) or await self._is_ours(message, target):
            return await self._gateway.personality(actor, target.author.display_name)
        return None

    async def _is_ours(self, message: discord.Message, target: discord.Message) -> bool:
        try:
            hook = await self._webhooks.for_channel_of(message.channel)
        except (discord.HTTPException, WebhookLimitReached, TypeError):
            return False
        return hook.id == target.webhook_id

    async def _is_foreign_webhook(self, message: discord.Message) -> bool:
        return not await self._is_ours(message, message)

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
        await self._post(message.channel, message, personality, request, message.author.id)

    async def _post(
        self,
        channel: discord.abc.Messageable,
        message: discord.Message | None,
        personality: common.Personality,
        request: gw.GenerateRequest,
        user_id: int,
    ) -> None:
        answer = Answer(personality, user_id, channel, request)
        shown = personality

        async def send(text: str) -> int:
            sent = await self._webhooks.send(
                channel, text, username=shown.display_name, avatar_url=shown.avatar_url or None
            )
            self._answers[sent.id] = answer  # known at once, for replies and reactions
            return sent.id

        async def edit(message_id: int, text: str) -> None:
            await self._webhooks.edit(channel, message_id, text)

        async def delete(message_id: int) -> None:
            await self._webhooks.delete(channel, message_id)

        prefix = _reply_quote(message) if message is not None else ""
        stream = StreamedAnswer(
            send,
            edit,
            delete,
            interval=self._settings.stream_edit_interval_seconds,
            prefix=prefix,
        )
        text = ""
        files: list[common.GeneratedFile] = []
        try:
            async with contextlib.AsyncExitStack() as typing:
                async for event in self._gateway.generate(request):
                    kind = event.WhichOneof("event")
                    if kind == "accepted":
                        # Typing only once the gateway took the message: a refusal (a mute)
                        # shows nothing at all.
                        await typing.enter_async_context(channel.typing())
                        answer.job_id = event.accepted.job_id
                        if event.accepted.HasField("personality"):
                            shown = event.accepted.personality
                    elif kind == "chunk":
                        text += event.chunk.text
                        await stream.update(text)
                    elif kind == "activity":
                        await self._working(channel, stream, shown, event.activity, text)
                    elif kind == "finished":
                        text = event.finished.content
                        if event.finished.footer:  # shown under the answer, never in history
                            text += f"\n-# {event.finished.footer}"
                        files = list(event.finished.files)
            answer.message_ids = await stream.finish(text)
            await self._attach(channel, answer.message_ids, files)
        except TzurotError as err:
            log.info("bot.answer_failed", reason=err.reason, code=err.code.name)
            answer.job_id = ""
            if not self._notices.should_reply(err, user_id):
                await stream.finish("")  # muted, or a block told already: no reply at all
                return
            answer.message_ids = await stream.finish(error_reply(shown, err))
        except WebhookLimitReached as err:
            await channel.send(str(err))
            return
        while len(self._answers) > self._settings.seen_messages_capacity:
            self._answers.popitem(last=False)
        if answer.job_id and answer.message_ids:
            self._latest[(_channel_key(channel), personality.slug)] = answer
            await self._gateway.confirm_delivery(answer.job_id, answer.message_ids)

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
    snippet = discord.utils.escape_markdown(snippet) or "(attachment)"
    return (
        f"{REPLY_QUOTE_PREFIX} **{message.author.display_name}** {snippet} · {message.jump_url}\n"
    )
