"""The bot's only way out: the gateway's gRPC API, with failures as typed Tzurot errors.

`call` awaits any gateway RPC and turns an `AioRpcError` into the `TzurotError` the server
raised (reason, metadata, retry delay). `unimplemented` tells an RPC the gateway does not offer
yet (issue #5's admin API) from a real failure.
"""

from __future__ import annotations

import asyncio
from asyncio import timeout as _timeout  # not `asyncio.`: tests swap that for a virtual clock
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import discord
import grpc
import structlog

from tzurot.bot.config import BotSettings
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import TzurotError, from_rpc_error
from tzurot.runtime.retry import retry_idempotent
from tzurot.runtime.tls import load_tls
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

T = TypeVar("T")
log = structlog.get_logger(__name__)


class NoteBudget:
    """Seconds several notes share (a hand-over's, NoteAnswerPreview awaited between its
    pieces): only the time spent inside the notes counts, not what is done between them (the
    pieces posted, however slowly Discord takes them). Once they are spent, the rest are not
    tried. After a note failed, each later one is tried once (it carries every id, so it
    repairs the one lost if the gateway is back). `end_by` caps each note's own deadline,
    the one in flight included (a bot stopping: part of its grace)."""

    def __init__(self, seconds: float, *, end_by: float | None = None) -> None:
        self.seconds = seconds
        self.failed = False
        self._spent = 0.0
        self._began: float | None = None  # loop time the note in flight began
        self._end_by = end_by
        self._running: asyncio.Timeout | None = None  # the note in flight's

    def left(self, now: float) -> float:
        """The seconds left at loop time `now` (0: none), the note in flight's time spent."""
        spent = self._spent + (0.0 if self._began is None else now - self._began)
        left = self.seconds - spent
        if self._end_by is not None:
            left = min(left, self._end_by - now)
        return max(left, 0.0)

    def begin(self, now: float, running: asyncio.Timeout) -> None:
        # An end set already caps each attempt's deadline (`left`); one set meanwhile cuts it.
        self._began, self._running = now, running

    def end(self, now: float) -> None:
        if self._began is not None:
            self._spent += now - self._began
        self._began = self._running = None

    def end_by(self, deadline: float) -> None:
        """No note goes on past loop time `deadline` (the one in flight is cut there)."""
        self._end_by = deadline if self._end_by is None else min(self._end_by, deadline)
        if self._running is not None:
            self._running.reschedule(self._end_by)


def gateway_channel(settings: BotSettings) -> grpc.aio.Channel:
    """The bot's channel to the gateway. Every call on it waits for the connection (within
    its deadline) rather than failing UNAVAILABLE while the channel is still connecting or in
    reconnect backoff: a message that arrives as the bot starts, or while the gateway
    restarts, is answered once the gateway is there. Nothing is sent twice by waiting, and
    what would be resent by hand is idempotent (Generate by its idempotency key,
    ConfirmDelivery by its job)."""
    return secure_channel(
        settings.gateway_addr,
        load_tls(settings.tls_dir),
        server_identity="gateway",
        default_timeout=settings.default_deadline_seconds,
        wait_for_ready=True,
    )


def unimplemented(err: TzurotError) -> bool:
    return err.code is grpc.StatusCode.UNIMPLEMENTED


def actor_of(user: discord.abc.User, *, user_id: str | None = None) -> common.Actor:
    return common.Actor(user_id=user_id or str(user.id), display_name=user.display_name)


def location_of(channel: object, guild: discord.Guild | None) -> common.Location:
    """Where a message is: threads and forum posts name their parent channel and the thread."""
    thread = channel if isinstance(channel, discord.Thread) else None
    parent = channel.parent if isinstance(channel, discord.Thread) else channel
    nsfw = bool(getattr(parent, "is_nsfw", lambda: False)())
    return common.Location(
        guild_id=str(guild.id) if guild else "",
        channel_id=str(getattr(parent, "id", "")),
        thread_id=str(thread.id) if thread else "",
        nsfw_channel=nsfw,
    )


NOTE_PREVIEW_SECONDS = 10.0
NOTE_PREVIEW_BUDGET_SECONDS = 60.0
"""A note is retried this long (a gateway restarting, a loaded machine), in the background."""
_LAST_ATTEMPT_SECONDS = 0.1
"""The shortest deadline of an attempt, started when the budget is all but spent."""
MAX_LIST_PAGES = 50
"""How many pages of a list the bot reads at most (5,000 personalities)."""


class GatewayClient:
    def __init__(self, stub: gw_grpc.GatewayServiceAsyncStub, *, generate_timeout: float) -> None:
        self.stub = stub
        self.generate_timeout = generate_timeout

    async def call(self, rpc: Awaitable[T]) -> T:
        try:
            return await rpc
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="gateway") from None

    async def generate(
        self, request: gw.GenerateRequest
    ) -> AsyncGenerator[gw.GenerateResponse, None]:
        """The answer's events. Closed early (`aclosing`), it cancels the call: the gateway
        stops a generation nobody will deliver."""
        call = self.stub.Generate(request, timeout=self.generate_timeout)
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="gateway") from None
        finally:
            call.cancel()  # a no-op once the call has ended

    async def speak_answer(
        self, request: gw.SpeakAnswerRequest
    ) -> AsyncGenerator[gw.SpeakAnswerResponse, None]:
        """The answer's speech. Closed early (`aclosing`), it cancels the call, as `generate`."""
        call = self.stub.SpeakAnswer(request, timeout=self.generate_timeout)
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, service="gateway") from None
        finally:
            call.cancel()  # a no-op once the call has ended

    async def personalities(
        self, actor: common.Actor, *, owned_only: bool = False
    ) -> list[common.Personality]:
        """Every personality the actor may use (`owned_only`: that they own), page after page
        (at most MAX_LIST_PAGES)."""
        found: list[common.Personality] = []
        token = ""
        for _ in range(MAX_LIST_PAGES):
            reply = await self.call(
                self.stub.ListPersonalities(
                    gw.ListPersonalitiesRequest(
                        actor=actor,
                        owned_only=owned_only,
                        page=common.PageRequest(page_size=100, page_token=token),
                    )
                )
            )
            found.extend(reply.personalities)
            token = reply.page.next_page_token
            if not token:
                break
        return found

    async def personality(self, actor: common.Actor, name: str) -> common.Personality | None:
        try:
            reply = await self.call(
                self.stub.GetPersonality(gw.GetPersonalityRequest(actor=actor, personality=name))
            )
        except TzurotError as err:
            if err.code is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.personality

    async def resolve_mentions(
        self, actor: common.Actor, content: str, limit: int
    ) -> list[gw.Mention]:
        """The personalities `content` @mentions for `actor`, in order (the gateway alone
        matches names and aliases, by its rules)."""
        reply = await self.call(
            self.stub.ResolveMentions(
                gw.ResolveMentionsRequest(actor=actor, content=content, limit=limit)
            )
        )
        return list(reply.mentions)

    async def plan_reply(
        self, actor: common.Actor, location: common.Location, content: str, message_id: str
    ) -> tuple[str, list[common.Personality]] | None:
        """Who of the channel's activated personalities answers, in order, and the round id;
        None when the gateway does not offer PlanChannelReply."""
        try:
            reply = await self.call(
                self.stub.PlanChannelReply(
                    gw.PlanChannelReplyRequest(
                        actor=actor, location=location, content=content, message_id=message_id
                    )
                )
            )
        except TzurotError as err:
            if unimplemented(err):
                return None
            raise
        return reply.round_id, list(reply.speakers)

    async def activation(self, location: common.Location) -> common.Personality | None:
        """The personality activated where `location` is (thread first, then its channel)."""
        try:
            reply = await self.call(
                self.stub.GetChannelActivation(gw.GetChannelActivationRequest(location=location))
            )
        except TzurotError as err:
            if unimplemented(err) or err.code is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        if not reply.HasField("activation"):
            return None
        return reply.activation.personality

    async def job_for_message(self, actor: common.Actor, message_id: int) -> gw.Job | None:
        """The job that posted Discord message `message_id` (any bot process, any time), with
        its inspection when `actor` is its user; None if no delivered answer is that message."""
        try:
            reply = await self.call(
                self.stub.GetJobStatus(
                    gw.GetJobStatusRequest(delivered_message_id=str(message_id), actor=actor)
                )
            )
        except TzurotError as err:
            if err.code is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.job

    async def note_preview(
        self,
        job_id: str,
        message_ids: list[int],
        reply_header: str = "",
        *,
        budget: float | NoteBudget | None = None,
    ) -> None:
        """The answer is being shown as `message_ids` (none: an error is shown instead), the
        first starting with `reply_header`, so a restarted bot can finish it if this one
        dies. Best effort, short deadline: the answer is posted whatever becomes of this.
        Tried for `budget` seconds in all (`NOTE_PREVIEW_BUDGET_SECONDS` unless given), or
        for what is left of a `NoteBudget` shared with other notes (not at all once it is
        spent; a single attempt once one of them failed): each attempt's deadline is what
        is left of it."""
        loop = asyncio.get_running_loop()
        if isinstance(budget, NoteBudget):
            await self._note_shared(job_id, message_ids, reply_header, budget)
            return
        budget = NOTE_PREVIEW_BUDGET_SECONDS if budget is None else budget
        deadline = loop.time() + budget

        def left() -> float:
            return max(deadline - loop.time(), _LAST_ATTEMPT_SECONDS)

        try:
            await self._note(job_id, message_ids, reply_header, budget, left)
        except TzurotError as err:
            log.info("bot.preview_not_noted", job_id=job_id, reason=err.reason or err.code.name)

    async def _note_shared(
        self, job_id: str, message_ids: list[int], reply_header: str, shared: NoteBudget
    ) -> None:
        loop = asyncio.get_running_loop()
        budget = shared.left(loop.time())
        if budget <= 0:
            log.info("bot.preview_not_noted", job_id=job_id, reason="skipped")
            return

        def left() -> float:
            left = shared.left(loop.time())
            if left <= 0:  # spent meanwhile, or a stop cut it short
                raise TzurotError(
                    "note budget spent",
                    reason="NOTE_BUDGET_SPENT",
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            return left

        # The real loop's timeout: a stop's `end_by` cuts the note in flight (its loop time).
        try:
            async with _timeout(None) as running:
                shared.begin(loop.time(), running)
                try:
                    await self._note(
                        job_id, message_ids, reply_header, 0.0 if shared.failed else budget, left
                    )
                finally:
                    shared.end(loop.time())
            return
        except TzurotError as err:
            reason = err.reason or err.code.name
        except TimeoutError:
            reason = "STOPPING"
        log.info("bot.preview_not_noted", job_id=job_id, reason=reason)
        shared.failed = True

    async def _note(
        self,
        job_id: str,
        message_ids: list[int],
        reply_header: str,
        budget: float,
        left: Callable[[], float],
    ) -> None:
        request = gw.NoteAnswerPreviewRequest(
            job_id=job_id, message_ids=[str(i) for i in message_ids], reply_header=reply_header
        )

        def attempt() -> Awaitable[gw.NoteAnswerPreviewResponse]:
            return self.stub.NoteAnswerPreview(request, timeout=min(NOTE_PREVIEW_SECONDS, left()))

        await self.call(
            retry_idempotent(  # idempotent: it sets the list; a lost note loses the rescue
                attempt, what="NoteAnswerPreview", budget_seconds=budget
            )
        )

    async def confirm_delivery(self, job_id: str, message_ids: list[int]) -> None:
        """Idempotent, so retried across a gateway restart: an answer the user saw must
        reach history."""
        request = gw.ConfirmDeliveryRequest(
            job_id=job_id, message_ids=[str(i) for i in message_ids]
        )
        await self.call(
            retry_idempotent(lambda: self.stub.ConfirmDelivery(request), what="ConfirmDelivery")
        )
