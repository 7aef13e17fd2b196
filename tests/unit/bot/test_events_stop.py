"""A bot stopping while it finishes a dead bot's answer (an `unfinished` event): it takes no
more events, lets that one finish within the grace period and acknowledges it before its
stream ends (ended first, the gateway would hand the event to the next bot while this one
still posts it); past the grace, the hand-over is cut and the stream ends as before."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest

from tzurot.bot.bot import TzurotBot
from tzurot.bot.config import BotSettings
from tzurot.bot.events import EventListener
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_events import FakeChannel, FakeClient, _until


def _unfinished(event_id: str) -> gw.SubscribeBotEventsResponse:
    return gw.SubscribeBotEventsResponse(
        event=gw.BotEvent(
            event_id=event_id,
            location=common.Location(guild_id="1", channel_id="42"),
            unfinished=gw.UnfinishedAnswer(
                job_id="j1",
                content="the whole answer",
                preview_message_ids=["700"],
                personality=common.Personality(slug="lilith", display_name="Lilith"),
            ),
        )
    )


@dataclass
class OpenStub:
    """One stream that sends `events`, then stays open until cancelled; each ack notes
    whether the stream had been cancelled by then."""

    events: list[gw.SubscribeBotEventsResponse]
    acks: list[tuple[str, bool]] = field(default_factory=list)
    cancelled: bool = False

    def SubscribeBotEvents(self, request: Any, timeout: float) -> Any:
        stub = self

        async def stream() -> AsyncIterator[Any]:
            for event in stub.events:
                yield event
            await asyncio.Event().wait()  # open until cancelled
            yield None  # never reached: the generator is an async one

        class Call:
            def __aiter__(self) -> AsyncIterator[Any]:
                return stream()

            def cancel(self) -> bool:
                stub.cancelled = True
                return True

        return Call()

    async def AckBotEvent(self, request: gw.AckBotEventRequest) -> gw.AckBotEventResponse:
        self.acks.append((request.event_id, self.cancelled))
        return gw.AckBotEventResponse()


@dataclass
class HeldFlow:
    """finish_unfinished held until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)

    def answering(self, job_id: str) -> bool:
        return False

    async def finish_unfinished(
        self, channel: Any, unfinished: gw.UnfinishedAnswer, *, notes: Any = None
    ) -> list[int]:
        self.started.append(unfinished.job_id)
        await self.release.wait()
        return [700, 901]


def listener_of(stub: OpenStub, flow: HeldFlow) -> EventListener:
    return EventListener(
        FakeClient(FakeChannel(42)),  # type: ignore[arg-type]  # a fake client
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        flow,  # type: ignore[arg-type]  # only answering and finish_unfinished are used
        backoff=(0.001, 0.004),
    )


async def test_a_handover_in_progress_finishes_and_is_acked_before_the_stream_ends() -> None:
    stub = OpenStub([_unfinished("u1"), _unfinished("u2")])
    flow = HeldFlow()
    listener = listener_of(stub, flow)
    running = asyncio.create_task(listener.run())
    await _until(lambda: flow.started)
    stopping = asyncio.create_task(listener.stop_taking(30.0))
    await asyncio.sleep(0)
    assert not stopping.done()  # waiting for the hand-over
    flow.release.set()
    await stopping
    running.cancel()  # as TzurotBot.close does next (it may have returned already)
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert stub.acks == [("u1", False)]  # acknowledged while its stream was still open
    assert flow.started == ["j1"]  # u2 was never taken: the gateway releases it
    assert stub.cancelled


async def test_past_the_grace_the_handover_is_cut_and_its_stream_ends() -> None:
    stub = OpenStub([_unfinished("u1")])
    flow = HeldFlow()
    listener = listener_of(stub, flow)
    running = asyncio.create_task(listener.run())
    await _until(lambda: flow.started)
    await listener.stop_taking(0.01)  # the grace runs out, the hand-over still held
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert stub.acks == []
    assert stub.cancelled


async def test_the_bots_close_waits_for_the_handover_within_its_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def disconnected(self: Any) -> None:  # never connected to Discord
        return None

    monkeypatch.setattr(discord.AutoShardedClient, "close", disconnected)
    stub = OpenStub([_unfinished("u1")])
    flow = HeldFlow()
    listener = listener_of(stub, flow)
    bot = TzurotBot(
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        BotSettings(tls_dir=Path("unused"), grace_seconds=30),
    )
    bot.listeners.append(listener)
    bot._listening.append(asyncio.create_task(listener.run()))
    await _until(lambda: flow.started)
    closing = asyncio.create_task(bot.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    flow.release.set()
    await closing
    assert stub.acks == [("u1", False)]
    assert stub.cancelled
