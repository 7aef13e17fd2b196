"""A hand-over's notes share one budget (HANDOVER_NOTE_BUDGET_SECONDS), not one each: against
a hung gateway, a hand-over of many pieces spends at most that on its notes in all (the first
spends it, the rest are not tried); a stop brings the end forward to half its grace. Time is a
virtual clock (test_handover_note_budget's): each attempt of a hung gateway takes its whole
deadline, and nothing sleeps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tzurot.bot import gateway_client
from tzurot.bot.gateway_client import NoteBudget
from tzurot.bot.unfinished import HANDOVER_NOTE_BUDGET_SECONDS, finish_unfinished
from tzurot.runtime import retry
from tzurot.runtime.config import ServiceSettings

from .test_handover_note_budget import Clock, HungGateway, TimedClient
from .test_unfinished_parts import FilesChannel, unfinished
from .test_unfinished_redelivered import ShowingPool


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    virtual = SimpleNamespace(get_running_loop=lambda: clock, sleep=clock.sleep)
    monkeypatch.setattr(retry, "asyncio", virtual)
    monkeypatch.setattr(gateway_client, "asyncio", virtual)
    return clock


async def _hand_over(gateway: TimedClient, words: int, notes: NoteBudget | None = None) -> int:
    content = ("word " * words).strip()
    channel = FilesChannel({11: "word"}, {})
    ids = await finish_unfinished(
        ShowingPool(channel),  # type: ignore[arg-type]  # a fake pool
        channel,  # type: ignore[arg-type]  # a fake channel
        unfinished(("11",), content=content),
        gateway=gateway,
        notes=notes,
    )
    return len(ids)


async def test_all_the_notes_of_a_hand_over_share_one_budget(clock: Clock) -> None:
    grace = ServiceSettings.model_fields["grace_seconds"].default
    assert grace > HANDOVER_NOTE_BUDGET_SECONDS  # the pieces and the acknowledgement need some
    gateway = TimedClient(HungGateway(clock))
    assert await _hand_over(gateway, 3000) == 8  # finished all the same
    assert len(gateway.took) == 7  # a note asked for after each piece posted
    assert sum(gateway.took) <= HANDOVER_NOTE_BUDGET_SECONDS, gateway.took
    assert clock.now <= HANDOVER_NOTE_BUDGET_SECONDS


async def test_a_hung_first_note_spends_the_budget_and_the_rest_are_not_tried(clock: Clock) -> None:
    hung = HungGateway(clock)
    gateway = TimedClient(hung)
    await _hand_over(gateway, 3000)
    first = len(hung.timeouts)
    assert first >= 1
    assert gateway.took[1:] == [0.0] * 6  # no attempt after the first note spent the budget
    assert len(hung.timeouts) == first


class SlowGateway(HungGateway):
    """Notes land, each after 1 s."""

    async def NoteAnswerPreview(self, request: Any, **options: float) -> Any:
        self.timeouts.append(options["timeout"])
        self.clock.now += 1.0
        return None


async def test_notes_that_land_slowly_stop_at_the_budget(clock: Clock) -> None:
    gateway = TimedClient(SlowGateway(clock))
    await _hand_over(gateway, 3000)
    assert sum(gateway.took) <= HANDOVER_NOTE_BUDGET_SECONDS + 1.0  # the last one in flight
    assert max(gateway.hung.timeouts) <= HANDOVER_NOTE_BUDGET_SECONDS


async def test_an_end_brought_forward_ends_the_notes(clock: Clock) -> None:
    notes = NoteBudget(HANDOVER_NOTE_BUDGET_SECONDS)
    assert notes.left(clock.now) == HANDOVER_NOTE_BUDGET_SECONDS
    notes.end_by(clock.now + 1.0)
    gateway = TimedClient(HungGateway(clock))
    await _hand_over(gateway, 3000, notes)
    assert sum(gateway.took) <= 1.0, gateway.took
