"""A hand-over's note budget (NoteBudget) counts only the time spent inside its notes: posting
the pieces between them, however slowly Discord takes them, uses none of it. A note that fails
does not switch the later ones off (each carries every id, so the next that lands repairs it).
A stop caps the notes, the one in flight included, and one that comes before the hand-over's
notes exist is kept for them. Time is a virtual clock (test_handover_note_budget's) but for
the note cut in flight, which waits on the real loop's timeout; nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from tzurot.bot import gateway_client
from tzurot.bot.gateway_client import GatewayClient, NoteBudget
from tzurot.bot.unfinished import HANDOVER_NOTE_BUDGET_SECONDS, finish_unfinished
from tzurot.runtime import retry

from .test_events import FakeChannel, FakeClient, _until
from .test_events_stop import OpenStub, _unfinished, listener_of
from .test_events_stop_notes import NotesFlow
from .test_handover_note_budget import Clock, HungGateway, TimedClient
from .test_unfinished_parts import FilesChannel, unfinished
from .test_unfinished_redelivered import ShowingPool

SEND_SECONDS = 0.5  # a webhook send, rate limited (5 per 2 s) and a round trip


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    virtual = SimpleNamespace(get_running_loop=lambda: clock, sleep=clock.sleep)
    monkeypatch.setattr(retry, "asyncio", virtual)
    monkeypatch.setattr(gateway_client, "asyncio", virtual)
    return clock


class SlowPool(ShowingPool):
    def __init__(self, channel: FilesChannel, clock: Clock) -> None:
        super().__init__(channel)
        self.clock = clock

    async def send(self, channel: object, content: str, **options: Any) -> Any:
        self.clock.now += SEND_SECONDS
        return await super().send(channel, content, **options)


class Healthy(HungGateway):
    """Notes land at once; `noted`: each note's ids. The first `failing` fail (INTERNAL)."""

    def __init__(self, clock: Clock, failing: int = 0) -> None:
        super().__init__(clock)
        self.failing = failing
        self.noted: list[list[str]] = []

    async def NoteAnswerPreview(self, request: Any, **options: float) -> Any:
        self.timeouts.append(options["timeout"])
        if self.failing:
            self.failing -= 1
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "broken"
            )
        self.noted.append(list(request.message_ids))
        return None


async def _slow_hand_over(clock: Clock, gateway: TimedClient) -> list[int]:
    channel = FilesChannel({11: "word"}, {})
    return await finish_unfinished(
        SlowPool(channel, clock),  # type: ignore[arg-type]  # a fake pool
        channel,  # type: ignore[arg-type]  # a fake channel
        unfinished(("11",), content=("word " * 6000).strip()),
        gateway=gateway,
    )


async def test_slow_posting_leaves_a_healthy_gateway_every_piece_noted(clock: Clock) -> None:
    stub = Healthy(clock)
    ids = await _slow_hand_over(clock, TimedClient(stub))
    assert clock.now > HANDOVER_NOTE_BUDGET_SECONDS  # posting alone outlasts the budget
    assert [int(i) for i in stub.noted[-1]] == ids  # the last note covers every piece


async def test_a_hung_gateway_takes_at_most_the_budget_in_notes(clock: Clock) -> None:
    gateway = TimedClient(HungGateway(clock))
    ids = await _slow_hand_over(clock, gateway)
    assert len(ids) > 2
    assert len(gateway.took) == len(ids) - 1
    assert sum(gateway.took) <= HANDOVER_NOTE_BUDGET_SECONDS, gateway.took


async def test_a_note_after_a_failed_one_still_notes_every_piece(clock: Clock) -> None:
    stub = Healthy(clock, failing=1)  # the first note fails, for good
    gateway = TimedClient(stub)
    ids = await _slow_hand_over(clock, gateway)
    assert len(stub.noted) == len(ids) - 2  # every note but the failed one landed
    assert [int(i) for i in stub.noted[-1]] == ids


class NeverAnswers:
    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def NoteAnswerPreview(self, request: Any, **options: float) -> Any:
        self.asked.set()
        await asyncio.Event().wait()


async def test_a_stop_cuts_the_note_in_flight() -> None:
    stub = NeverAnswers()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    notes = NoteBudget(3600.0)  # a budget that would hold the note for an hour
    note = asyncio.create_task(gateway.note_preview("j1", [1], budget=notes))
    await stub.asked.wait()
    loop = asyncio.get_running_loop()
    notes.end_by(loop.time())  # a stop: the notes end now
    await asyncio.wait_for(note, 5)  # cut, not an hour (nor the 10 s attempt)
    assert notes.failed
    assert notes.left(loop.time()) == 0.0


class FetchedClient(FakeClient):
    """The channel is not cached: fetched, held until `fetched` is set."""

    def __init__(self, channel: FakeChannel) -> None:
        super().__init__(channel)
        self.fetching = asyncio.Event()
        self.fetched = asyncio.Event()

    def get_channel(self, channel_id: int) -> Any:
        return None

    async def fetch_channel(self, channel_id: int) -> Any:
        self.fetching.set()
        await self.fetched.wait()
        return self.channel


async def test_a_stop_while_the_channel_is_fetched_ends_the_notes_it_gets() -> None:
    stub = OpenStub([_unfinished("u1")])
    flow = NotesFlow()
    listener = listener_of(stub, flow)
    client = FetchedClient(FakeChannel(42))
    listener._client = client  # type: ignore[assignment]  # a fake client
    running = asyncio.create_task(listener.run())
    await client.fetching.wait()
    stopping = asyncio.create_task(listener.stop_taking(2.0))
    await _until(lambda: listener._stopping)
    client.fetched.set()
    await _until(lambda: flow.notes)
    (notes,) = flow.notes
    assert notes.left(asyncio.get_running_loop().time()) <= 1.0 < HANDOVER_NOTE_BUDGET_SECONDS
    flow.release.set()
    await stopping
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert stub.acks == [("u1", False)]
