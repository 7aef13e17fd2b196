"""Text deltas merged to at most one per interval; order, errors and closing kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import pytest

from tzurot.inference.coalesce import coalesced
from tzurot.inference.domain import ReplyEvent, SkillActivity, TextDelta
from tzurot.runtime.errors import Unavailable

LONG = 60.0  # an interval no test waits out


class Answer:
    """Events in order; `stall` (an index) waits there until `go` is set."""

    def __init__(self, events: Sequence[ReplyEvent | Exception], stall: int = -1) -> None:
        self.events, self.stall = events, stall
        self.go = asyncio.Event()
        self.closed = False

    async def stream(self) -> AsyncGenerator[ReplyEvent, None]:
        try:
            for n, event in enumerate(self.events):
                if n == self.stall:
                    await self.go.wait()
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            self.closed = True


async def collect(events: AsyncGenerator[ReplyEvent, None]) -> list[ReplyEvent]:
    async with asyncio.timeout(10):
        return [event async for event in events]


def texts(*pieces: str) -> list[ReplyEvent]:
    return [TextDelta(piece) for piece in pieces]


async def test_the_first_delta_at_once_then_the_rest_merged() -> None:
    answer = Answer(texts("Hello", " there", ",", " Ann"))
    assert await collect(coalesced(answer.stream(), LONG)) == texts("Hello", " there, Ann")


async def test_other_events_keep_their_place_after_the_text_before_them() -> None:
    activity = SkillActivity(skill="clock", step=1)
    answer = Answer([*texts("a", "b"), activity, *texts("c", "d")])
    assert await collect(coalesced(answer.stream(), LONG)) == [
        *texts("a", "b"),
        activity,
        *texts("cd"),
    ]


async def test_waiting_text_goes_out_when_the_interval_is_up_though_the_provider_pauses() -> None:
    answer = Answer(texts("first", " second", " third"), stall=2)
    events = coalesced(answer.stream(), 0.05)
    async with asyncio.timeout(10):  # without the timer, " second" would wait for " third"
        assert await anext(events) == TextDelta("first")
        assert await anext(events) == TextDelta(" second")
    answer.go.set()
    assert await collect(events) == texts(" third")


async def test_an_error_comes_after_the_text_read_before_it() -> None:
    failure = Unavailable("fakeai failed while answering; try again later")
    answer = Answer([*texts("a", "b", "c"), failure])
    events = coalesced(answer.stream(), LONG)
    seen: list[ReplyEvent] = []
    with pytest.raises(Unavailable) as caught:
        await drain(events, seen)
    assert caught.value is failure
    assert seen == texts("a", "bc")


async def drain(events: AsyncGenerator[ReplyEvent, None], into: list[ReplyEvent]) -> None:
    async with asyncio.timeout(10):
        async for event in events:
            into.append(event)


async def test_closing_ends_the_answer_still_streaming() -> None:
    answer = Answer(texts("a", "b"), stall=1)
    events = coalesced(answer.stream(), LONG)
    assert await anext(events) == TextDelta("a")
    await asyncio.sleep(0.01)
    assert not answer.closed
    await events.aclose()
    assert answer.closed


async def test_no_interval_passes_every_delta() -> None:
    answer = Answer(texts("a", "b", "c"))
    assert await collect(coalesced(answer.stream(), 0)) == texts("a", "b", "c")
    assert answer.closed
