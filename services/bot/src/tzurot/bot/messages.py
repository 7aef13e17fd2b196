"""One Discord message, from `on_message` to the answers posted as personalities.

Bots and our own webhooks are ignored, except PluralKit-proxied messages, which act for the
human PluralKit names. The parts, each in its own module: who is addressed (`addressees`),
what is sent (`request_build`), posting an answer (`answering`), reactions on answers
(`reactions`), and what was posted (`answers`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import discord
import structlog

from tzurot.bot.activated import ActivatedChannels
from tzurot.bot.addressees import Addressees
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.chain_quote import answered_message
from tzurot.bot.config import BotSettings
from tzurot.bot.dedup import SeenMessages
from tzurot.bot.delivery import channel_key
from tzurot.bot.edits import EditQueue, MessageEdits
from tzurot.bot.forwards import ForwardComments, is_forward_message
from tzurot.bot.gateway_client import GatewayClient, NoteBudget, actor_of
from tzurot.bot.moderation import Cooldowns
from tzurot.bot.pluralkit import PluralKit
from tzurot.bot.proxied import ProxyWatch
from tzurot.bot.reactions import Reactions
from tzurot.bot.references import with_forward
from tzurot.bot.request_build import RequestBuilder
from tzurot.bot.unfinished import finish_unfinished
from tzurot.bot.voice import VoicePoster
from tzurot.bot.webhooks import WebhookPool
from tzurot.runtime.errors import TzurotError, restarting_message
from tzurot.runtime.retry import RETRYABLE
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

SPOKEN = frozenset({discord.MessageType.default, discord.MessageType.reply})
"""Messages someone wrote. The others are Discord's notices (a pin, a new thread, a member
joining, a boost): a pin's notice even carries a reference to the pinned message."""

_AWAY = restarting_message("gateway")
GATEWAY_AWAY = f"{_AWAY[:1].upper()}{_AWAY[1:]}."
"""What a message the gateway could not take is told (as a failed Generate's reply says)."""

log = structlog.get_logger(__name__)

__all__ = ["Answer", "MessageFlow"]


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
        self._gateway_notices = Cooldowns(settings.gateway_away_notice_seconds)
        self._deleted = SeenMessages(settings.seen_messages_capacity)
        self._answers = AnswerBook(settings.seen_messages_capacity)
        # As long as the answers are remembered: an edit of a comment keeps its forward.
        self._forwards = ForwardComments(capacity=settings.seen_messages_capacity)
        self._builder = RequestBuilder(client, settings, ours=self._is_ours)
        self._addressees = Addressees(
            client,
            gateway,
            webhooks,
            settings,
            answers=self._answers,
            readable=self._builder.readable,
        )
        self.voice = VoicePoster(gateway, webhooks, client.http)
        self._poster = Poster(gateway, webhooks, settings, self._answers, self.voice)
        edits = MessageEdits(
            gateway,
            self._answers,
            addressees=self._addressees,
            builder=self._builder,
            forwards=self._forwards,
        )
        # An edit waits while the message is being answered (a 🔄 of it too): edits.py.
        self._edits = EditQueue(edits.apply)
        self._reactions = Reactions(
            gateway,
            webhooks,
            self._answers,
            addressees=self._addressees,
            builder=self._builder,
            poster=self._poster,
            edits=self._edits,
        )
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- events ----

    async def on_message(self, message: discord.Message) -> None:
        with self._busy():
            try:
                await self._on_message(message)
            except discord.HTTPException as exc:
                # Whatever Discord or the gateway refused is told where it happens; the rest is
                # logged here, never raised into discord.py's event loop.
                log.warning(
                    "bot.message_failed",
                    error=type(exc).__name__,
                    status=exc.status,
                    code=exc.code,
                )
            except TzurotError as err:
                log.warning(
                    "bot.message_failed",
                    error=type(err).__name__,
                    reason=err.reason,
                    code=err.code.name,
                )
                await self._tell_gateway_away(message, err)

    async def _tell_gateway_away(self, message: discord.Message, err: TzurotError) -> None:
        """The gateway away (or refusing for now) before the message was answered (who it
        addresses could not be found, or its request built): the channel is told to try
        again, as a failed Generate tells it (`GATEWAY_AWAY`), when the message may have meant
        a personality (`Addressees.may_address`: a plain message too, in a channel the gateway
        last answered as having one activated), once per channel and
        `gateway_away_notice_seconds` (an outage meets every message). Any other message:
        logged only."""
        if err.code not in RETRYABLE or not self._addressees.may_address(message):
            return
        if not self._gateway_notices.due(channel_key(message.channel)):
            return
        await self._poster.notify(message.channel, GATEWAY_AWAY)

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
        """Waits (at most `grace` s) until no message is being answered, no delivered
        answer is still being spoken and no preview note is still being sent: for a clean
        stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
            await asyncio.wait_for(self.voice.drain(), max(0.0, deadline - loop.time()))
            # The last preview notes: a successor finishes what this bot leaves by them.
            await asyncio.wait_for(self._poster.notes_sent(), max(0.0, deadline - loop.time()))

    async def _on_message(self, message: discord.Message) -> None:
        async with self._edits.holding(message.id):  # its edits, once it is answered
            await self._answer_message(message)

    async def _answer_message(self, message: discord.Message) -> None:
        actor = await self._actor(message)
        if actor is None:
            return
        self._forwards.posted(message, actor.user_id)  # a forward: its comment may follow
        # A forward waits for its comment before the gateway is asked anything: one its
        # comment answers for plans no group round (which would replace the comment's).
        # Any other message goes on at once.
        if await self._forwards.commented(message, actor.user_id):
            return
        # PluralKit's repost stands for its original: it takes what the original took.
        original = self._proxies.original_of(message.id) if self._proxies is not None else 0
        # A possible comment holds the forward while the gateway reads it (however slow).
        self._forwards.claim(message, actor.user_id, original=original)
        try:
            targets, round_id = await self._addressees.targets(message, actor)
            forward = (
                self._forwards.take(message, actor.user_id, original=original) if targets else None
            )
        finally:
            self._forwards.release(message)  # addressing nobody (or failed): not a comment
        if not targets:
            return
        if (
            self._proxies is not None
            and message.webhook_id is None
            # PluralKit proxies no message without content or files of its own: a forward.
            and not is_forward_message(message)
            and await self._proxies.original_was_proxied(message.id, self._deleted.__contains__)
        ):
            return  # PluralKit reposted it: the repost is answered (and takes its forward)
        request, notes = await self._builder.base(message, actor, forward=forward)
        if forward is not None:  # asked with both: a 🔄 after a restart finds the forward
            request.message_ids.append(str(forward.id))
        for personality, content in targets:
            one = gw.GenerateRequest()
            one.CopyFrom(request)
            one.personality = personality.slug or personality.display_name
            text = with_forward(content, forward)
            one.content = "\n".join([self._builder.readable_text(message, text), *notes])
            one.idempotency_key = f"{message.id}:{one.personality}"
            one.round_id = round_id
            await self._answer(message, personality, one)

    async def _actor(self, message: discord.Message) -> common.Actor | None:
        """Who the message speaks for, or None when it is not for us (or seen already)."""
        me = self._client.user
        ignored = (
            message.guild is None
            or self._addressees.is_ours(message)
            or (me is not None and message.author.id == me.id)
            or (message.webhook_id is None and message.author.bot)
            or message.type not in SPOKEN
            # Replies to other apps' interactions come through their application webhook.
            or message.interaction_metadata is not None
        )
        if ignored or not self._seen.first_time(message.id):
            return None
        if message.webhook_id is not None:
            if self._proxies is None:
                return None
            # Only a message addressing a personality is worth asking PluralKit about.
            if not await self._addressees.addressed(message, actor_of(message.author)):
                return None
            sender = await self._proxies.sender_of_repost(message.id)
            return actor_of(message.author, user_id=sender) if sender else None
        return actor_of(message.author)

    def _is_ours(self, message: discord.Message) -> bool:
        # Addressees, which knows our messages, is made after the builder (it reads through it).
        return self._addressees.is_ours(message)

    @property
    def activated(self) -> ActivatedChannels:
        """The channels remembered as having a personality activated (`activated.py`)."""
        return self._addressees.activated

    def answer_for(self, message_id: int) -> Answer | None:
        """What the bot posted as `message_id` (for Inspect), if it still remembers."""
        return self._answers.get(message_id)

    async def on_edit(self, message: discord.Message) -> None:
        """A user edited a message: if a personality answered it, its turns in history and
        its answers' 🔄 take the new text (edits.py). An update Discord sends for a link
        preview, a pin or a thread sets no `edited_at`: no edit. No user edits a forward: its
        update events leave its turn as it is."""
        if message.author.bot or message.webhook_id is not None or message.guild is None:
            return
        if message.edited_at is None:
            return
        if is_forward_message(message):
            return
        with self._busy():
            await self._edits.edited(message)

    def on_delete(self, message_id: int) -> None:
        self._deleted.first_time(message_id)
        if self._proxies is not None:
            self._proxies.deleted(message_id)

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        with self._busy():
            await self._reactions.on_reaction(payload)

    async def _answer(
        self, message: discord.Message, personality: common.Personality, request: gw.GenerateRequest
    ) -> None:
        # The human it speaks for: the author, or the one behind a PluralKit proxy.
        user_id = int(request.actor.user_id or message.author.id)
        await self._poster.post(message.channel, message, personality, request, user_id)

    async def post_greeting(
        self, channel: discord.abc.Messageable, personality: common.Personality, text: str
    ) -> list[int]:
        """A character's greeting (a conversation with it starts here): posted as it."""
        with self._busy():
            return await self._poster.post_text(channel, personality, text)

    def answering(self, job_id: str) -> bool:
        """Whether this bot is streaming that job's answer now (`Poster.answering`)."""
        return self._poster.answering(job_id)

    async def finish_unfinished(
        self,
        channel: discord.abc.Messageable,
        unfinished: gw.UnfinishedAnswer,
        *,
        notes: NoteBudget | None = None,
    ) -> list[int]:
        """An answer whose bot died mid-stream: its preview becomes the whole answer (its
        notes drawing on `notes`, tzurot.bot.unfinished)."""
        with self._busy():
            return await finish_unfinished(
                self._webhooks, channel, unfinished, gateway=self._gateway, notes=notes
            )

    async def post_scheduled(
        self,
        channel: discord.abc.Messageable,
        personality: common.Personality,
        request: gw.GenerateRequest,
        reply_to_message_id: str = "",
    ) -> Answer:
        """A turn the gateway scheduled (free will, a chain reply): posted like any answer,
        but a failure posts nothing (nobody asked; `error_reason` says why). A chain reply
        quotes the answer it replies to (`reply_to_message_id`), as a reply quotes the
        message it answers; that answer gone, it is posted without the quote."""
        answer = Answer(personality, 0, channel, request, shown=personality)
        with self._busy():
            answered = await answered_message(channel, reply_to_message_id)
            await self._poster.post(channel, answered, personality, request, 0, quiet=answer)
        return answer
