"""A hand-over notes each piece it posts (NoteAnswerPreview), awaited between pieces: against
a gateway that fails them, each note gives up within `HANDOVER_NOTE_BUDGET_SECONDS` (3 s,
every attempt included), not the live bot's minute of background retries; so a failing
note can neither stall the hand-over nor eat a stop's grace. Time is a virtual clock: each
attempt of a hung gateway takes its whole deadline, each pause its length, and nothing
sleeps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from tzurot.bot import gateway_client
from tzurot.bot.gateway_client import NOTE_PREVIEW_BUDGET_SECONDS, GatewayClient
from tzurot.bot.unfinished import HANDOVER_NOTE_BUDGET_SECONDS, finish_unfinished
from tzurot.runtime import retry

from .test_unfinished_parts import FilesChannel, unfinished
from .test_unfinished_redelivered import ShowingPool


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class HungGateway:
    """NoteAnswerPreview never answers: each attempt ends at its deadline (DEADLINE_EXCEEDED);
    `timeouts`: each attempt's deadline."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.timeouts: list[float] = []

    async def NoteAnswerPreview(self, request: Any, **options: float) -> Any:
        timeout = options["timeout"]  # the attempt's deadline, as the stub is given it
        self.timeouts.append(timeout)
        self.clock.now += timeout
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "hung"
        )


class TimedClient(GatewayClient):
    """Records how long each note took, by the clock."""

    def __init__(self, stub: HungGateway) -> None:
        super().__init__(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
        self.hung = stub
        self.took: list[float] = []

    async def note_preview(self, *args: Any, **kwargs: Any) -> None:
        began = self.hung.clock.now
        await super().note_preview(*args, **kwargs)
        self.took.append(self.hung.clock.now - began)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    virtual = SimpleNamespace(get_running_loop=lambda: clock, sleep=clock.sleep)
    monkeypatch.setattr(retry, "asyncio", virtual)
    monkeypatch.setattr(gateway_client, "asyncio", virtual)
    return clock


async def test_a_handover_note_gives_up_within_its_short_budget(clock: Clock) -> None:
    assert HANDOVER_NOTE_BUDGET_SECONDS <= 5
    gateway = TimedClient(HungGateway(clock))
    content = ("word " * 1000).strip()  # 3 pieces, the first shown already
    channel = FilesChannel({11: "word"}, {})
    ids = await finish_unfinished(
        ShowingPool(channel),  # type: ignore[arg-type]  # a fake pool
        channel,  # type: ignore[arg-type]  # a fake channel
        unfinished(("11",), content=content),
        gateway=gateway,
    )
    assert len(ids) == 3  # the answer is finished all the same
    assert len(gateway.took) == 2  # a note after each piece posted
    assert all(took <= HANDOVER_NOTE_BUDGET_SECONDS for took in gateway.took), gateway.took
    assert max(gateway.hung.timeouts) <= HANDOVER_NOTE_BUDGET_SECONDS


async def test_the_live_bots_notes_keep_their_minute(clock: Clock) -> None:
    """In the background, a preview note is retried as before: a gateway restarting takes
    longer than 5 s."""
    gateway = TimedClient(HungGateway(clock))
    await gateway.note_preview("job-1", [11])
    (took,) = gateway.took
    assert HANDOVER_NOTE_BUDGET_SECONDS < took <= NOTE_PREVIEW_BUDGET_SECONDS


class Flaky(HungGateway):
    """Refused at once (UNAVAILABLE) three times, then hung: no attempt outlives the budget."""

    async def NoteAnswerPreview(self, request: Any, **options: float) -> Any:
        if len(self.timeouts) < 3:
            self.timeouts.append(options["timeout"])
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "away"
            )
        return await super().NoteAnswerPreview(request, **options)


async def test_an_attempt_late_in_the_budget_gets_only_what_is_left(clock: Clock) -> None:
    gateway = TimedClient(Flaky(clock))
    await gateway.note_preview("job-1", [11], budget=HANDOVER_NOTE_BUDGET_SECONDS)
    (took,) = gateway.took
    assert took <= HANDOVER_NOTE_BUDGET_SECONDS
