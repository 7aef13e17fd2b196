"""A bot stopping during a hand-over ends that hand-over's notes (NoteAnswerPreview) by half
its grace: the other half is left for its pieces and its acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from tzurot.bot.gateway_client import NoteBudget
from tzurot.bot.unfinished import HANDOVER_NOTE_BUDGET_SECONDS
from tzurot.v1 import gateway_pb2 as gw

from .test_events import _until
from .test_events_stop import HeldFlow, OpenStub, _unfinished, listener_of


@dataclass
class NotesFlow(HeldFlow):
    notes: list[NoteBudget] = field(default_factory=list)

    async def finish_unfinished(
        self, channel: Any, unfinished: gw.UnfinishedAnswer, *, notes: Any = None
    ) -> list[int]:
        self.notes.append(notes)
        return await super().finish_unfinished(channel, unfinished)


async def test_a_stop_ends_the_handovers_notes_by_half_its_grace() -> None:
    stub = OpenStub([_unfinished("u1")])
    flow = NotesFlow()
    listener = listener_of(stub, flow)
    running = asyncio.create_task(listener.run())
    await _until(lambda: flow.notes)
    (notes,) = flow.notes
    loop = asyncio.get_running_loop()
    assert notes.left(loop.time()) > 1.0  # a budget of its own
    stopping = asyncio.create_task(listener.stop_taking(2.0))
    await asyncio.sleep(0)
    assert notes.left(loop.time()) <= 1.0 < HANDOVER_NOTE_BUDGET_SECONDS
    flow.release.set()
    await stopping
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert stub.acks == [("u1", False)]
