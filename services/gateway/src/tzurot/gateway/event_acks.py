"""The bot's acknowledgement of an event, and the history it leaves to store.

- An `unfinished` answer acknowledged with its message ids is delivered first, as
  ConfirmDelivery would have been (a failure there fails the acknowledgement, and the event
  comes back); one shown withheld (its user's data or its personality being deleted,
  unfinished.py) is not.
- A posted greeting becomes the conversation's first turn. The acknowledgement notes its
  history `pending` in the very statement that acknowledges the event, then asks memory. When
  memory is away (restarting) the acknowledgement still succeeds, since the bot must not post
  the greeting again, and every gateway's sweep stores it once memory is back, including a
  gateway started after the one that took the acknowledgement stopped (`pending` is in
  Postgres). It mirrors `store_pending_history` for answers. StoreExchange is idempotent on
  the event id, and only whoever still finds the greeting pending marks it stored and records
  it in lore, so replicas sweeping together store and record it once. A greeting that memory
  refuses for good, or whose personality was deleted since, is marked refused and not tried
  again.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from tzurot.gateway.delivery_flow import HISTORY_REFUSED_FOR_GOOD, PENDING_HISTORY_PAGE
from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.gateway_core import GatewayState
from tzurot.gateway.greetings import KIND as GREETING_KIND
from tzurot.gateway.greetings import greeting_turn, index_of
from tzurot.gateway.outbox_store import HISTORY_PENDING, BotEventRow
from tzurot.gateway.store.previews import UNFINISHED_KIND, WITHHELD_REASONS
from tzurot.runtime.errors import NotFound, TzurotError
from tzurot.runtime.retry import RETRYABLE

log = structlog.get_logger(__name__)


class EventAcks(GatewayState):
    async def confirm_delivery(self, job_id: str, message_ids: Sequence[str]) -> Job:
        raise NotImplementedError  # delivery_flow.py's

    async def acknowledge_event(
        self, event_id: str, message_ids: Sequence[str], dropped_reason: str
    ) -> None:
        """The bot handled the event: posted it as `message_ids`, or dropped it
        (`dropped_reason`). It is never sent again, even when memory is away. An
        `unfinished` one whose job is gone (its user's data deleted) is blanked once handled
        (`forget_unfinished`): it records nothing any more but its dedup key."""
        event = await self.events.store.event(event_id)
        unfinished = event is not None and event.kind == UNFINISHED_KIND
        job = None
        if unfinished and event is not None and event.job_id is not None:
            job = await self._store.get_job(event.job_id)  # gone with its user's data
        if (
            job is not None
            and message_ids
            and event is not None
            and event.reason not in WITHHELD_REASONS  # shown withheld: nothing to deliver
            and job.status is JobStatus.STREAMED
        ):
            # The bot finished the abandoned answer: delivered, as ConfirmDelivery would
            # have (before the acknowledgement: a failure here brings the event back).
            await self.confirm_delivery(job.id, message_ids)
        greeted = event is not None and event.kind == GREETING_KIND and bool(message_ids)
        await self.events.ack(event_id, message_ids, dropped_reason, history_pending=greeted)
        if greeted:
            await self._greeting_acknowledged(event_id)
        if unfinished and job is None:
            await self.events.store.forget_unfinished(event_id)

    async def _greeting_acknowledged(self, event_id: str) -> None:
        """Stores the posted greeting's turn now when memory takes it; else it stays pending
        for the sweep, and the acknowledgement still succeeds."""
        event: BotEventRow | None = None
        settled = False  # stored, refused, or not pending: nothing left for the sweep
        try:
            event = await self.events.store.event(event_id)
            if event is None or event.history_status != HISTORY_PENDING:
                settled = True  # stored already (an acknowledgement sent again), or refused
                return
            await self._store_greeting(event)
            settled = True
        except TzurotError as err:
            if event is not None and err.code in HISTORY_REFUSED_FOR_GOOD:
                await self._refuse_greeting(event, err)
                settled = True
                return
            log.warning("greeting.history_pending", event_id=event_id, reason=err.reason)
        finally:
            # Memory away, or this call cut short (its deadline, Postgres away): the sweep
            # stores it once memory takes it.
            if not settled:
                self._greetings_pending = True

    async def store_pending_greetings(self) -> int:
        """Stores the greetings posted while memory was away; how many it stored.

        Like `store_pending_history`: every pending greeting is read, a page at a time; one
        refused for good is marked so and not tried again; one that failed otherwise is
        passed over, not in the way of the others; memory away (UNAVAILABLE,
        DEADLINE_EXCEEDED) ends the sweep until the next.
        """
        if not self._greetings_pending:
            return 0
        self._greetings_pending = False  # a greeting left pending during this sweep sets it
        try:
            return await self._sweep_pending_greetings()
        except BaseException:  # Postgres away, stopped mid-sweep: the next sweep looks again
            self._greetings_pending = True
            raise

    async def _sweep_pending_greetings(self) -> int:
        stored = 0
        last: BotEventRow | None = None
        while True:
            page = await self.group_store.events_pending_history(PENDING_HISTORY_PAGE, last)
            for event in page:
                try:
                    if await self._store_greeting(event):
                        stored += 1
                        log.info("greeting.history_stored_late", event_id=event.id)
                except TzurotError as err:
                    if err.code in RETRYABLE:
                        self._greetings_pending = True  # memory is still away: sweep again
                        return stored
                    if err.code in HISTORY_REFUSED_FOR_GOOD:
                        await self._refuse_greeting(event, err)
                    else:
                        log.warning("greeting.history_failed", event_id=event.id, reason=err.reason)
            if len(page) < PENDING_HISTORY_PAGE:
                return stored
            last = page[-1]

    async def _store_greeting(self, event: BotEventRow) -> bool:
        """The greeting's turn into memory, then marked stored (and recorded in lore) by
        whoever still finds it pending: whether this call did. The channel's turn, stored like
        a scheduled turn (no user, no memory formed), whoever activated the personality."""
        personality = None
        if event.personality_id is not None:
            personality = await self._store.get_personality(event.personality_id)
        if personality is None:
            raise NotFound(
                f"the personality of greeting {event.id} no longer exists",
                reason="PERSONALITY_NOT_FOUND",
            )
        conversation = event.location.conversation_id
        await self._memory.store_exchange(
            job_id=event.id,  # idempotent: stored once, however often it is asked
            conversation_id=conversation,
            personality_id=personality.id,
            user_id="",  # the channel's: not the activating user's exchange
            turns=[greeting_turn(event, personality)],
            form_memories=False,
        )
        return await self.group_store.greeting_stored(
            event.id, conversation, personality.id, index_of(event)
        )

    async def _refuse_greeting(self, event: BotEventRow, err: TzurotError) -> None:
        await self.group_store.refuse_greeting_history(event.id)
        log.warning("greeting.history_refused", event_id=event.id, reason=err.reason)
