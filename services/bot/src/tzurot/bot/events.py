"""What the bot posts without being asked: the gateway's event stream, one per shard.

The gateway keeps every event (a chain reply, a free-will turn, release notes, an
announcement) until the bot acknowledges it, and holds what it sent for this stream while the
stream lives, however long an answer takes. So the listener only has to hold the stream open:
when it breaks (gateway restart, network, the call's deadline) it reconnects with exponential
backoff, and whatever it had not acknowledged comes back. Each event is handled once here per
delivery:

- a turn is generated and posted like any answer (`MessageFlow.post_scheduled`: Generate with
  the turn id, post through the webhook, ConfirmDelivery, which delivers the event too), then
  acknowledged with its message ids. A turn that fails for a passing reason (`retry_later`:
  the gateway or inference unavailable, the gateway's rate limit, the job still running
  elsewhere, Discord unreachable) is handed back to be sent again after a lease; any other
  failure (a human interrupted the chain, no key, the provider's quota, a model gone, a turn
  posted already) is acknowledged as dropped with its reason, and nothing is posted. The
  gateway gives up on an event after MAX_EVENT_ATTEMPTS deliveries;
- a notice is posted as the bot itself, without pinging anyone, with a nonce derived from the
  event (`enforce_nonce`), so a second delivery of one notice never posts it twice;
- an unfinished answer (a bot died while streaming it) has its preview messages edited into
  the whole answer, or a failure notice, and is acknowledged with their ids (which delivers
  the job: its turn reaches history). One this bot is still streaming (a restart in the mesh
  cut its generation short and the bot is asking for it again, when the sweep met the
  failed job first) is left to that stream and handed back for later, ANSWERED_HERE (the
  gateway deletes it once it finds the job taken up again);
- a greeting (a conversation with a character starts) is posted as the personality, as
  written, and acknowledged with its message ids (the gateway keeps it as the first turn);
- a greeting, turn or unfinished answer that comes without its personality (the gateway
  found none: deleted, or being deleted) is acknowledged as dropped, PERSONALITY_NOT_FOUND,
  and nothing is posted: nothing speaks as a deleted personality. But an unfinished answer
  withheld (its personality deleted, or its user's data with her private personality) still
  has its previews edited into why, and nothing else: the half answer is not left
  unexplained;
- a channel that is gone or forbids the bot is acknowledged as dropped; any other failure
  breaks the stream, which gives back what it had not acknowledged (counted: the gateway
  gives up after MAX_EVENT_ATTEMPTS).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import discord
import grpc
import structlog

from tzurot.bot.answers import Answer
from tzurot.bot.gateway_client import GatewayClient, NoteBudget
from tzurot.bot.messages import MessageFlow
from tzurot.bot.reactions import SCHEDULED_KEY_PREFIX
from tzurot.bot.unfinished import HANDOVER_NOTE_BUDGET_SECONDS, withheld
from tzurot.bot.webhooks import WebhookLimitReached
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

ANSWERED_HERE = "ANSWERED_HERE"
"""An `unfinished` answer this bot is still streaming (asked for again after a restart):
handed back for later (the gateway deletes it once it finds the job taken up again), and
nothing of it is touched."""
STREAM_SECONDS = 3600.0
"""Each stream is re-opened after this long (a deadline keeps a dead peer from hanging it)."""


def notice_nonce(event_id: str) -> str:
    """The same nonce for every delivery of one event (Discord allows 25 characters): with
    `enforce_nonce`, a repost after a crash between posting and acknowledging returns the
    message already there instead of creating another (Discord dedupes for a few minutes)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:25]


class EventListener:
    def __init__(
        self,
        client: discord.Client,
        gateway: GatewayClient,
        flow: MessageFlow,
        *,
        shard_id: int = 0,
        shard_count: int = 1,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._client = client
        self._gateway = gateway
        self._flow = flow
        self._request = gw.SubscribeBotEventsRequest(shard_id=shard_id, shard_count=shard_count)
        self._backoff = backoff
        self.connections = 0
        self.handled = 0
        self._stopping = False
        self._handling: asyncio.Task[None] | None = None  # the event being handled
        self._notes: NoteBudget | None = None  # the notes of the hand-over being handled
        self._notes_end: float | None = None  # stopping: loop time the notes end by

    async def run(self) -> None:
        """Holds the stream open until cancelled, reconnecting after every break; stopped
        (`stop_taking`), it returns at the next event or break."""
        await self._client.wait_until_ready()
        delay = self._backoff[0]
        while True:
            stream = self._gateway.stub.SubscribeBotEvents(self._request, timeout=STREAM_SECONDS)
            try:
                self.connections += 1
                log.info("events.connected", shard_id=self._request.shard_id)
                async for reply in stream:
                    if self._stopping:
                        return  # the stream is cancelled below: the gateway releases it
                    delay = self._backoff[0]
                    # A task of its own, so a stop can wait for it (`stop_taking`); awaited
                    # here, it is cancelled with the listener.
                    self._handling = asyncio.ensure_future(self._handle(reply.event))
                    try:
                        await self._handling
                    finally:
                        self._handling = None
            except grpc.aio.AioRpcError as exc:
                log.info("events.disconnected", code=exc.code().name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("events.failed")
            finally:
                # Stopped while handling an event (shutdown), the call would stay open and
                # keep claiming; cancelled, the gateway releases what it had not acknowledged.
                stream.cancel()
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def stop_taking(self, grace: float) -> None:
        """Takes no more events; the one being handled (a dead bot's answer being finished,
        a greeting being posted) finishes within `grace` s and is acknowledged, while the
        stream stays open: the gateway keeps renewing its claim, and hands it to no other
        bot meanwhile. Cancelling `run` afterwards ends the stream (and what is still being
        handled, past the grace). The hand-over's notes (NoteAnswerPreview) end by half the
        grace, the note in flight included, the rest left for its pieces and its
        acknowledgement; a hand-over whose notes have not begun yet (its channel still being
        fetched) gets that end with them."""
        self._stopping = True
        self._notes_end = asyncio.get_running_loop().time() + grace / 2
        if self._notes is not None:
            self._notes.end_by(self._notes_end)
        if self._handling is not None:
            await asyncio.wait([self._handling], timeout=grace)

    async def _handle(self, event: gw.BotEvent) -> None:
        channel = await self._channel(event.location)
        if channel is None:
            await self._ack(event.event_id, [], "CHANNEL_GONE")
            return
        kind = event.WhichOneof("kind")
        if (
            kind in _AS_A_PERSONALITY
            and not getattr(event, kind).HasField("personality")
            and not (kind == "unfinished" and withheld(event.unfinished))
        ):
            await self._ack(event.event_id, [], "PERSONALITY_NOT_FOUND")
            self.handled += 1
            return
        try:
            if kind == "notice":
                sent = await channel.send(
                    event.notice.text[:2000],
                    allowed_mentions=discord.AllowedMentions.none(),
                    nonce=notice_nonce(event.event_id),  # discord.py adds enforce_nonce
                )
                await self._ack(event.event_id, [sent.id], "")
            elif kind == "turn":
                await self._turn(channel, event)
            elif kind == "unfinished" and self._flow.answering(event.unfinished.job_id):
                # Not abandoned: this bot is asking for it again (a restart in the mesh cut
                # its generation short, and the gateway's sweep met the failed job first).
                # Left to that stream, and handed back for later: by then the gateway finds
                # the job taken up again (or delivered) and deletes the event.
                log.info("events.unfinished_answered_here", job_id=event.unfinished.job_id)
                await self._ack(event.event_id, [], ANSWERED_HERE, retry_later=True)
            elif kind == "unfinished":
                # A dead bot's half-posted answer: finished (or a failure notice); the ids in
                # the acknowledgement deliver the job.
                self._notes = NoteBudget(HANDOVER_NOTE_BUDGET_SECONDS, end_by=self._notes_end)
                try:
                    ids = await self._flow.finish_unfinished(
                        channel, event.unfinished, notes=self._notes
                    )
                finally:
                    self._notes = None
                await self._ack(event.event_id, ids, "" if ids else "NOTHING_SHOWN")
            elif kind == "greeting":
                greeting = event.greeting
                ids = await self._flow.post_greeting(channel, greeting.personality, greeting.text)
                await self._ack(event.event_id, ids, "" if ids else "FORBIDDEN")
            else:
                await self._ack(event.event_id, [], "UNKNOWN_EVENT")
        except discord.Forbidden:
            await self._ack(event.event_id, [], "FORBIDDEN")
        except discord.NotFound:
            await self._ack(event.event_id, [], "CHANNEL_GONE")
        except WebhookLimitReached:
            # The channel holds Discord's maximum of webhooks and none is ours: nothing can be
            # posted as a personality there until an admin removes one. Dropped with why, not
            # left to tear the stream down and come back for ever.
            log.warning("events.webhook_limit", event_id=event.event_id, kind=kind)
            await self._ack(event.event_id, [], "WEBHOOK_LIMIT")
        self.handled += 1

    async def _turn(self, channel: discord.abc.Messageable, event: gw.BotEvent) -> None:
        turn = event.turn
        request = gw.GenerateRequest(
            location=event.location,
            personality=turn.personality.slug,
            idempotency_key=f"{SCHEDULED_KEY_PREFIX}{turn.turn_id}",
            turn_id=turn.turn_id,
        )
        answer = await self._flow.post_scheduled(
            channel, turn.personality, request, turn.reply_to_message_id
        )
        if answer.error_reason and not answer.message_ids and retry_later(answer):
            log.info("events.turn_retry_later", reason=answer.error_reason)
            await self._ack(event.event_id, [], answer.error_reason, retry_later=True)
            return
        await self._ack(
            event.event_id, answer.message_ids, "" if answer.message_ids else answer.error_reason
        )

    async def _channel(self, location: common.Location) -> discord.abc.Messageable | None:
        target = int(location.thread_id or location.channel_id or 0)
        if not target:
            return None
        found = self._client.get_channel(target)
        if found is None:
            with contextlib.suppress(discord.NotFound, discord.Forbidden, discord.HTTPException):
                found = await self._client.fetch_channel(target)
        return found if isinstance(found, discord.abc.Messageable) else None

    async def _ack(
        self, event_id: str, message_ids: list[int], reason: str, *, retry_later: bool = False
    ) -> None:
        try:
            await self._gateway.call(
                self._gateway.stub.AckBotEvent(
                    gw.AckBotEventRequest(
                        event_id=event_id,
                        message_ids=[str(i) for i in message_ids],
                        dropped_reason=reason,
                        retry_later=retry_later,
                    )
                )
            )
        except TzurotError as err:
            log.warning("events.ack_failed", event_id=event_id, reason=err.reason)


_AS_A_PERSONALITY = frozenset({"turn", "unfinished", "greeting"})
"""Event kinds posted under a personality's name: never without one."""

RETRY_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})
"""Failures the gateway's job store runs again under the same key (store/jobs.py
RETRYABLE_CODES): a turn failed so is tried again later."""
RETRY_REASONS = frozenset({"RATE_LIMITED", "JOB_IN_PROGRESS", "DISCORD_UNREACHABLE"})
"""Passing refusals with other codes: the gateway's own rate limit (no job was claimed), the
turn's job still running elsewhere, Discord out of reach. A provider's rate limit or quota
(PROVIDER_RATE_LIMITED, PROVIDER_QUOTA_EXCEEDED) is not one: its job keeps the failure."""


def retry_later(answer: Answer) -> bool:
    """Whether a scheduled turn that failed is tried again later; anything else is dropped
    (retried, a failure the gateway replays from its job would come back forever)."""
    return answer.error_code in RETRY_CODES or answer.error_reason in RETRY_REASONS
