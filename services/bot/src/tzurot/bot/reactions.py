"""Reactions on an answer by the user it answered: ❌ deletes it (and its turn in history),
🔄 replaces it with a new one for the same message.

🔄 first checks that the gateway still finds the answer's personality for the user
(`Addressees.found_now`, as a reply does): one that is deleted, being deleted or someone
else's private one leaves the answer as it is, alike, and nothing is posted. Then it asks for
the new answer naming the old one's job (`replaces_job_id`): the gateway leaves the old
exchange out of the new prompt and takes it out of history only when the new answer is
delivered, and the old messages go only once the new answer is posted (`Poster.post`'s
`replacing`). A generation refused (a deletion landing after the check, no key, a rate
limit...) or failing leaves the old answer shown and remembered. A comment that took a forward
was asked with both messages' ids: rebuilt after a restart, it reads the forward again.

What was said to the channel answered nobody: a greeting (no job), a free-will post or a
chain reply (a job whose user only pays, key `turn:…`) are no one's to delete or regenerate,
and the gateway's DeleteExchange refuses them too (NOT_YOUR_EXCHANGE)."""

from __future__ import annotations

import contextlib
from datetime import datetime

import discord
import grpc
import structlog

from tzurot.bot.addressees import Addressees
from tzurot.bot.addressing import PostedAs
from tzurot.bot.answer_endings import Replacing
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.delivery import channel_key
from tzurot.bot.edits import EditQueue
from tzurot.bot.forwards import is_forward_message
from tzurot.bot.gateway_client import GatewayClient, actor_of, location_of, unimplemented
from tzurot.bot.references import with_forward
from tzurot.bot.request_build import RequestBuilder
from tzurot.bot.webhooks import WebhookPool, delete_messages
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

DELETE_EMOJI = "❌"
REGENERATE_EMOJI = "🔄"
SCHEDULED_KEY_PREFIX = "turn:"
"""A scheduled turn's key (events.py sends it; gateway keeps the prefix for its own turns and
refuses it on anything else): its job's author is the payer, not whom it answered."""
NOBODY = 0
"""The user of an answer said to the channel (no Discord user has id 0)."""


class Reactions:
    def __init__(
        self,
        gateway: GatewayClient,
        webhooks: WebhookPool,
        answers: AnswerBook,
        *,
        addressees: Addressees,
        builder: RequestBuilder,
        poster: Poster,
        edits: EditQueue | None = None,
    ) -> None:
        """`edits`: the user's edits of a message, which wait while a 🔄 answers it again."""
        self._gateway, self._webhooks, self._answers = gateway, webhooks, answers
        self._addressees, self._builder, self._poster = addressees, builder, poster
        self._edits = edits

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if emoji not in {DELETE_EMOJI, REGENERATE_EMOJI} or payload.member is None:
            return
        answer = await self._answer_of(payload)
        if answer is None or answer.user_id == NOBODY or payload.user_id != answer.user_id:
            return
        if emoji == REGENERATE_EMOJI:
            await self._regenerate(answer)
            return
        # History first: once the user sees the answer vanish, their next message must not
        # find it in the conversation.
        if await self._forget_turn(answer):
            await self._delete_messages(answer)

    async def _regenerate(self, answer: Answer) -> None:
        """A new answer for the message `answer` answered; an edit of that message made
        meanwhile waits until it is delivered (its exchange then replaces the old one)."""
        first = answer.request.message_ids[0] if answer.request.message_ids else ""
        if self._edits is None or not first.isdigit():
            await self._regenerate_now(answer)
            return
        async with self._edits.holding(int(first)):
            await self._regenerate_now(answer)

    async def _regenerate_now(self, answer: Answer) -> None:
        regeneration = await self._regeneration(answer)
        if regeneration is None:
            return  # nothing to generate again: the answer stays as it is
        personality, request, edited_at = regeneration

        async def forget() -> None:  # a gateway that does not replace it itself
            await self._forget_turn(answer)

        try:
            await self._poster.post(
                answer.channel,
                None,
                personality,
                request,
                answer.user_id,
                replacing=Replacing(remove=lambda: self._delete_messages(answer), forget=forget),
                edited_at=edited_at,  # a later update with no new edit sends none
            )
        finally:
            self._answers.regeneration_ended(request.idempotency_key)

    async def _delete_messages(self, answer: Answer) -> None:
        """Deletes the answer's messages from Discord, up to the first one Discord refuses
        (logged: a 🔄's new answer is posted all the same, its generation has begun)."""
        for message_id in answer.message_ids:
            self._answers.forget(message_id)
        await delete_messages(self._webhooks, answer.channel, answer.message_ids)

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
        scheduled = job.idempotency_key.startswith(SCHEDULED_KEY_PREFIX)
        return Answer(
            common.Personality(id=job.personality_id),
            NOBODY if scheduled or not job.author_id.isdigit() else int(job.author_id),
            channel,
            request,
            message_ids=[int(m) for m in job.delivered_message_ids],
            job_id=job.id,
        )

    async def _regeneration(
        self, answer: Answer
    ) -> tuple[common.Personality, gw.GenerateRequest, datetime | None] | None:
        """What a 🔄 on `answer` generates: the same message's request under a new key, for
        its personality as the gateway finds it for the user now, and the user's last edit
        that request takes (`Answer.edited_at`: the answer's, or that of the message fetched
        again). None when there is nothing to generate again: the original message is gone,
        or the personality (deleted, being deleted, or not theirs to use: the gateway answers
        all three alike, and so does this, so someone else's private personality is not told
        apart from one that never was)."""
        request = gw.GenerateRequest()
        if answer.request.content:  # this process still has the whole request
            request.CopyFrom(answer.request)
            personality, edited_at = answer.personality, answer.edited_at
        else:  # rebuilt from the original message, fetched from Discord
            again = await self._rebuilt_request(answer)
            if again is None:
                return None
            personality, request, edited_at = again
        posted = PostedAs(answer.personality.id, personality.slug or personality.display_name)
        found = await self._addressees.found_now(posted, request.actor)
        if found is None:
            log.info("bot.regenerate_unknown_personality", personality_id=posted.personality_id)
            return None
        # A new key each time, never replaying an earlier job: a regenerated answer
        # (…#regen1.<token>) regenerates as …#regen2.<token>, a 🔄 after one that failed as
        # the next, and each 🔄's own token keeps apart those an earlier bot process asked.
        request.idempotency_key = self._answers.next_regeneration(answer.request.idempotency_key)
        # The exchange it replaces, which stays in history until the new one is delivered
        # (none for an error reply: nothing of it was stored).
        request.replaces_job_id = answer.job_id if answer.message_ids else ""
        return found, request, edited_at

    async def _rebuilt_request(
        self, answer: Answer
    ) -> tuple[common.Personality, gw.GenerateRequest, datetime | None] | None:
        """The request for the message `answer` answered, built again from Discord: the
        first of the messages it was asked with, and the forward a comment took (the second,
        `messages.py`), read again by its id; a forward gone since is left out. Its edit time
        is None: the message's edit (made while no bot ran, or one this bot never sent) is
        queued instead, sent once the 🔄 is delivered, so every exchange of the message takes
        it, not only the 🔄's."""
        if not answer.request.message_ids:
            return None
        first, *others = answer.request.message_ids
        try:
            original = await answer.channel.fetch_message(int(first))
        except discord.HTTPException:
            return None
        forward = await self._forward_among(answer.channel, others)
        actor = answer.request.actor
        for personality, content in await self._addressees.addressed(original, actor):
            if personality.id == answer.personality.id:
                request, notes = await self._builder.base(original, actor, forward=forward)
                if forward is not None:
                    request.message_ids.append(str(forward.id))
                request.personality = personality.slug or personality.display_name
                text = with_forward(content, forward)
                request.content = "\n".join([self._builder.readable_text(original, text), *notes])
                if original.edited_at is not None and self._edits is not None:
                    await self._edits.edited(original)  # held by this 🔄 until delivered
                return personality, request, None
        return None

    @staticmethod
    async def _forward_among(
        channel: discord.abc.Messageable, message_ids: list[str]
    ) -> discord.Message | None:
        """The forward among `message_ids` (in `channel`), fetched; None if there is none or
        it is gone."""
        for message_id in message_ids:
            with contextlib.suppress(discord.HTTPException):
                found = await channel.fetch_message(int(message_id))
                if is_forward_message(found):
                    return found
        return None

    async def _forget_turn(self, answer: Answer) -> bool:
        """Removes the answer's exchange from history, whether it is the latest one or not;
        False when the gateway refuses (not the user's exchange): nothing is to be deleted."""
        latest = self._answers.drop_latest(
            channel_key(answer.channel), answer.personality.slug, answer
        )
        if not answer.job_id or not answer.message_ids:
            return True  # an error reply: no exchange was stored
        try:
            await self._gateway.call(
                self._gateway.stub.DeleteExchange(
                    gw.DeleteExchangeRequest(
                        actor=answer.request.actor, message_id=str(answer.message_ids[0])
                    )
                )
            )
        except TzurotError as err:
            if err.code is grpc.StatusCode.PERMISSION_DENIED:  # e.g. said to the channel
                log.info("bot.reaction_refused", reason=err.reason)
                return False
            if err.code is grpc.StatusCode.NOT_FOUND:  # never stored, or already gone
                return True
            if not unimplemented(err):
                raise
            if latest:  # a gateway without DeleteExchange: the latest one at least
                await self._undo_last(answer)
        return True

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
