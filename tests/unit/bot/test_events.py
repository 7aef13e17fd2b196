"""The bot's event listener: reconnects after a broken stream, posts notices, acknowledges;
a scheduled turn that failed is handed back for later only when the failure passes, else
dropped with its reason (left unacknowledged, a failure the gateway replays would come back
forever)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import grpc
import pytest

from tzurot.bot.answers import Answer
from tzurot.bot.events import EventListener, notice_nonce
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.webhooks import WebhookLimitReached
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def _broken() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gateway gone"
    )


def _notice(event_id: str, channel_id: int) -> gw.SubscribeBotEventsResponse:
    return gw.SubscribeBotEventsResponse(
        event=gw.BotEvent(
            event_id=event_id,
            location=common.Location(guild_id="1", channel_id=str(channel_id)),
            notice=gw.Notice(kind="release", text="**Tzurot 9.9.9**"),
        )
    )


@dataclass
class FakeStub:
    """Each SubscribeBotEvents call plays the next script: events, then a break."""

    scripts: list[list[gw.SubscribeBotEventsResponse]]
    calls: int = 0
    acks: list[gw.AckBotEventRequest] = field(default_factory=list)

    cancelled: int = 0

    def SubscribeBotEvents(self, request: Any, timeout: float) -> FakeCall:
        script = self.scripts[self.calls] if self.calls < len(self.scripts) else []
        self.calls += 1

        async def stream() -> AsyncIterator[Any]:
            for event in script:
                yield event
            raise _broken()

        return FakeCall(self, stream())

    async def AckBotEvent(self, request: gw.AckBotEventRequest) -> gw.AckBotEventResponse:
        self.acks.append(request)
        return gw.AckBotEventResponse()


@dataclass
class FakeCall:
    """A server-streaming call: iterable, and cancellable like grpc.aio's."""

    stub: FakeStub
    replies: AsyncIterator[Any]

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.replies

    def cancel(self) -> bool:
        self.stub.cancelled += 1
        return True


@dataclass
class FakeChannel(discord.abc.Messageable):
    id: int
    sent: list[str] = field(default_factory=list)
    nonces: list[str | None] = field(default_factory=list)
    hold: asyncio.Event | None = None
    holding: int = 0
    """Sends waiting on `hold` now."""

    async def _get_channel(self) -> Any:
        return self

    async def send(self, content: str | None = None, **options: Any) -> Any:
        if self.hold is not None:
            self.holding += 1
            try:
                await self.hold.wait()
            finally:
                self.holding -= 1
        self.sent.append(content or "")
        self.nonces.append(options.get("nonce"))
        return discord.Object(id=1000 + len(self.sent))


class FakeClient:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel

    async def wait_until_ready(self) -> None:
        return None

    def get_channel(self, channel_id: int) -> Any:
        return self.channel if channel_id == self.channel.id else None

    async def fetch_channel(self, channel_id: int) -> Any:
        raise discord.NotFound(_Response(), "Unknown Channel")  # type: ignore[arg-type]  # the fields NotFound reads


class _Response:
    status = 404
    reason = "Not Found"


async def _until(predicate: Any) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")


async def run_until(listener: EventListener, done: Any) -> None:
    """Runs the listener until `done()` holds, then stops it (as the bot's shutdown does)."""
    task = asyncio.create_task(listener.run())
    try:
        await _until(done)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_it_reconnects_after_breaks_and_acknowledges_what_it_posted() -> None:
    channel = FakeChannel(42)
    stub = FakeStub([[], [_notice("e1", 42)], [_notice("e2", 42), _notice("e3", 7)]])
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    listener = EventListener(
        FakeClient(channel),  # type: ignore[arg-type]  # a fake client
        gateway,
        flow=None,  # type: ignore[arg-type]  # notices need no message flow
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: len(stub.acks) == 3)
    assert stub.calls >= 3  # two breaks survived
    assert channel.sent == ["**Tzurot 9.9.9**", "**Tzurot 9.9.9**"]
    assert [(a.event_id, list(a.message_ids), a.dropped_reason) for a in stub.acks] == [
        ("e1", ["1001"], ""),
        ("e2", ["1002"], ""),
        ("e3", [], "CHANNEL_GONE"),  # a channel the bot cannot see any more
    ]
    assert channel.nonces == [notice_nonce("e1"), notice_nonce("e2")]
    assert stub.cancelled == stub.calls  # every call closed, broken or not


def test_a_notice_nonce_is_the_events_own_and_fits_discords_limit() -> None:
    event_id = "0b7e8a52-7d0a-4c3e-9f55-4a1f2b9c6d21"
    assert notice_nonce(event_id) == notice_nonce(event_id)
    assert notice_nonce(event_id) != notice_nonce("0b7e8a52-7d0a-4c3e-9f55-4a1f2b9c6d22")
    assert len(notice_nonce(event_id)) <= 25


async def test_stopped_while_posting_it_cancels_its_stream_so_the_gateway_releases_it() -> None:
    """Shutdown mid-event: the call must end, or the gateway would keep the claim (and go on
    claiming for a subscriber that is gone)."""
    channel = FakeChannel(42, hold=asyncio.Event())
    stub = FakeStub([[_notice("e1", 42)]])
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    listener = EventListener(
        FakeClient(channel),  # type: ignore[arg-type]  # a fake client
        gateway,
        flow=None,  # type: ignore[arg-type]  # notices need no message flow
        backoff=(0.001, 0.004),
    )
    task = asyncio.create_task(listener.run())
    await _until(lambda: channel.holding == 1)  # it is in channel.send, held
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stub.cancelled == 1
    assert stub.acks == []


def _turn(event_id: str, channel_id: int) -> gw.SubscribeBotEventsResponse:
    return gw.SubscribeBotEventsResponse(
        event=gw.BotEvent(
            event_id=event_id,
            location=common.Location(guild_id="1", channel_id=str(channel_id)),
            turn=gw.ScheduledTurn(
                turn_id=event_id, personality=common.Personality(slug="lilith"), reason="check_in"
            ),
        )
    )


@dataclass
class FailingFlow:
    """post_scheduled as MessageFlow's, for a turn the gateway refused with (reason, code)."""

    reason: str
    code: str
    requests: list[gw.GenerateRequest] = field(default_factory=list)

    async def post_scheduled(
        self,
        channel: Any,
        personality: common.Personality,
        request: gw.GenerateRequest,
        reply_to_message_id: str = "",
    ) -> Answer:
        self.requests.append(request)
        answer = Answer(personality, 0, channel, request, shown=personality)
        answer.error_reason, answer.error_code = self.reason, self.code
        return answer


async def _ack_of_failed_turn(reason: str, code: str) -> gw.AckBotEventRequest:
    channel = FakeChannel(42)
    stub = FakeStub([[_turn("t1", 42)]])
    flow = FailingFlow(reason, code)
    listener = EventListener(
        FakeClient(channel),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow,  # type: ignore[arg-type]  # only post_scheduled is used
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: stub.acks)
    assert [r.turn_id for r in flow.requests] == ["t1"]
    assert channel.sent == []  # nothing is posted for a failed turn
    [ack] = stub.acks
    return ack


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("PROVIDER_QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"),
        ("PROVIDER_RATE_LIMITED", "RESOURCE_EXHAUSTED"),  # its job keeps the failure
        ("MODEL_NOT_FOUND", "NOT_FOUND"),
        ("PROMPT_TOO_LONG", "INVALID_ARGUMENT"),
        ("PROVIDER_REJECTED_REQUEST", "INVALID_ARGUMENT"),
        ("NO_ANSWER", "FAILED_PRECONDITION"),
        ("INTERNAL", "INTERNAL"),
        ("TURN_DELIVERED", "FAILED_PRECONDITION"),
    ],
)
async def test_a_turn_that_failed_for_good_is_dropped_with_its_reason(
    reason: str, code: str
) -> None:
    ack = await _ack_of_failed_turn(reason, code)
    assert (ack.event_id, list(ack.message_ids), ack.dropped_reason, ack.retry_later) == (
        "t1",
        [],
        reason,
        False,
    )


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("PROVIDER_UNAVAILABLE", "UNAVAILABLE"),
        ("GATEWAY_RESTARTING", "UNAVAILABLE"),
        ("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"),
        ("CLIENT_CANCELLED", "CANCELLED"),
        ("RATE_LIMITED", "RESOURCE_EXHAUSTED"),  # the gateway's own limit: no job was claimed
        ("JOB_IN_PROGRESS", "FAILED_PRECONDITION"),
        ("DISCORD_UNREACHABLE", ""),
    ],
)
async def test_a_turn_that_failed_for_now_is_handed_back_for_later(reason: str, code: str) -> None:
    """Not dropped, and not kept by the stream either: the gateway sends it again after a
    lease (and gives up after MAX_EVENT_ATTEMPTS)."""
    ack = await _ack_of_failed_turn(reason, code)
    assert (ack.event_id, list(ack.message_ids), ack.dropped_reason, ack.retry_later) == (
        "t1",
        [],
        reason,
        True,
    )


@pytest.mark.parametrize(
    "event",
    [
        gw.BotEvent(greeting=gw.Greeting(text="Welcome.", index=0)),
        gw.BotEvent(turn=gw.ScheduledTurn(turn_id="e1", reason="check_in")),
        gw.BotEvent(unfinished=gw.UnfinishedAnswer(job_id="j1", content="Half")),
        gw.BotEvent(
            unfinished=gw.UnfinishedAnswer(job_id="j1", content="Half", failed_message="why")
        ),
    ],
)
async def test_an_event_without_its_personality_posts_nothing(event: gw.BotEvent) -> None:
    """Its personality is deleted or being deleted (an older gateway, a race with the
    deletion): dropped, PERSONALITY_NOT_FOUND, and nothing is posted as it."""
    event.event_id = "e1"
    event.location.CopyFrom(common.Location(guild_id="1", channel_id="42"))
    channel = FakeChannel(42)
    stub = FakeStub([[gw.SubscribeBotEventsResponse(event=event)]])
    listener = EventListener(
        FakeClient(channel),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow=None,  # type: ignore[arg-type]  # nothing reaches the message flow
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: stub.acks)
    assert channel.sent == []
    [ack] = stub.acks
    assert (ack.event_id, list(ack.message_ids), ack.dropped_reason) == (
        "e1",
        [],
        "PERSONALITY_NOT_FOUND",
    )


@dataclass
class FinishingFlow:
    """finish_unfinished as MessageFlow's: the previews it was asked to finish."""

    finished: list[gw.UnfinishedAnswer] = field(default_factory=list)
    streaming: set[str] = field(default_factory=set)

    def answering(self, job_id: str) -> bool:
        return job_id in self.streaming

    async def finish_unfinished(
        self, channel: Any, unfinished: gw.UnfinishedAnswer, *, notes: Any = None
    ) -> list[int]:
        self.finished.append(unfinished)
        return [int(unfinished.preview_message_ids[0])]


async def test_a_withheld_answer_without_its_personality_still_says_why_in_its_preview() -> None:
    """Its personality was one of the user's private ones, deleted with her data: the half
    answer is still turned into why (bot/unfinished.py edits only), not left as it was."""
    withheld = gw.UnfinishedAnswer(
        job_id="",
        preview_message_ids=["700"],
        failed_reason="USER_DATA_DELETING",
        failed_message="your data is being deleted, as you asked",
    )
    event = gw.BotEvent(
        event_id="u1",
        location=common.Location(guild_id="1", channel_id="42"),
        unfinished=withheld,
    )
    stub = FakeStub([[gw.SubscribeBotEventsResponse(event=event)]])
    flow = FinishingFlow()
    listener = EventListener(
        FakeClient(FakeChannel(42)),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow,  # type: ignore[arg-type]  # only finish_unfinished is used
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: stub.acks)
    assert flow.finished == [withheld]
    [ack] = stub.acks
    assert (ack.event_id, list(ack.message_ids), ack.dropped_reason) == ("u1", ["700"], "")


async def test_a_half_answer_this_bot_is_still_streaming_is_left_to_that_stream() -> None:
    """A rollout cut its generation short and the bot is asking for it again; the gateway's
    sweep met the failed job first and handed it over as abandoned. Finishing it would edit
    "cut off" into the preview the new generation streams into: it is handed back for later
    (ANSWERED_HERE; the gateway deletes it once it finds the job taken up again) and left."""
    event = gw.BotEvent(
        event_id="u1",
        location=common.Location(guild_id="1", channel_id="42"),
        unfinished=gw.UnfinishedAnswer(
            job_id="j1",
            preview_message_ids=["700"],
            failed_reason="GATEWAY_RESTARTING",
            personality=common.Personality(slug="lilith", display_name="Lilith"),
        ),
    )
    stub = FakeStub([[gw.SubscribeBotEventsResponse(event=event), _notice("e2", 42)]])
    flow = FinishingFlow(streaming={"j1"})
    listener = EventListener(
        FakeClient(FakeChannel(42)),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow,  # type: ignore[arg-type]  # only answering and finish_unfinished are used
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: len(stub.acks) == 2)
    assert flow.finished == []
    assert [
        (a.event_id, list(a.message_ids), a.dropped_reason, a.retry_later) for a in stub.acks
    ] == [("u1", [], "ANSWERED_HERE", True), ("e2", ["1001"], "", False)]


@dataclass
class _LimitedFlow:
    """A message flow whose channel holds Discord's maximum of webhooks, none of them ours."""

    tried: list[str] = field(default_factory=list)

    def answering(self, job_id: str) -> bool:
        return False

    async def finish_unfinished(
        self, channel: Any, unfinished: gw.UnfinishedAnswer, *, notes: Any = None
    ) -> list[int]:
        self.tried.append(unfinished.job_id)
        raise WebhookLimitReached("general")


async def test_an_event_that_needs_a_webhook_where_none_can_be_made_is_dropped_with_why() -> None:
    """A half answer to finish in a channel at 15 webhooks: acknowledged WEBHOOK_LIMIT, and the
    events after it are handled on the same stream (left to break it, it came back for ever)."""
    channel = FakeChannel(42)
    unfinished = gw.SubscribeBotEventsResponse(
        event=gw.BotEvent(
            event_id="e1",
            location=common.Location(guild_id="1", channel_id="42"),
            unfinished=gw.UnfinishedAnswer(
                job_id="j1",
                content="the whole answer",
                preview_message_ids=["700"],
                personality=common.Personality(slug="lilith", display_name="Lilith"),
            ),
        )
    )
    stub = FakeStub([[unfinished, _notice("e2", 42)]])
    flow = _LimitedFlow()
    listener = EventListener(
        FakeClient(channel),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow=flow,  # type: ignore[arg-type]  # finishes half answers only
        backoff=(0.001, 0.004),
    )
    await run_until(listener, lambda: len(stub.acks) == 2)
    assert flow.tried == ["j1"]
    assert [(a.event_id, list(a.message_ids), a.dropped_reason) for a in stub.acks] == [
        ("e1", [], "WEBHOOK_LIMIT"),
        ("e2", ["1001"], ""),
    ]
