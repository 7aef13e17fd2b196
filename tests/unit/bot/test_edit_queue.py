"""The edits of a message wait while it is being answered, and are sent one at a time, the
latest last (tzurot.bot.edits.EditQueue)."""

from __future__ import annotations

import asyncio
from typing import Any

from tzurot.bot.edits import EditQueue


class Edited:
    """A stand-in for the edited discord.Message: the queue reads only its id."""

    def __init__(self, message_id: int, text: str) -> None:
        self.id, self.text = message_id, text


class Sender:
    """Records what is sent; with `gate`, each send waits on it."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sending = 0
        self.most_at_once = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, message: Any) -> None:
        self.sending += 1
        self.most_at_once = max(self.most_at_once, self.sending)
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(message.text)
        self.sending -= 1


async def test_an_edit_of_a_message_not_being_answered_is_sent_at_once() -> None:
    sender = Sender()
    queue = EditQueue(sender)
    await queue.edited(Edited(1, "Felix"))  # type: ignore[arg-type]  # a stand-in
    assert sender.sent == ["Felix"]


async def test_edits_made_while_it_is_answered_wait_and_only_the_latest_is_sent() -> None:
    sender = Sender()
    queue = EditQueue(sender)
    async with queue.holding(1):
        async with queue.holding(1):  # two answers of it (two personalities, or a 🔄)
            await queue.edited(Edited(1, "Felix"))  # type: ignore[arg-type]  # a stand-in
            await queue.edited(Edited(1, "Felix!"))  # type: ignore[arg-type]
            await queue.edited(Edited(2, "another message"))  # type: ignore[arg-type]
        assert sender.sent == ["another message"]  # the last answer of 1 is still made
    assert sender.sent == ["another message", "Felix!"]


async def test_edits_are_sent_one_at_a_time_the_latest_last() -> None:
    sender = Sender()
    sender.gate = asyncio.Event()
    queue = EditQueue(sender)
    first = asyncio.create_task(queue.edited(Edited(1, "one")))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    # Kept while "one" is sent, not sent beside it.
    await asyncio.wait_for(queue.edited(Edited(1, "two")), 1)  # type: ignore[arg-type]
    await asyncio.wait_for(queue.edited(Edited(1, "three")), 1)  # type: ignore[arg-type]
    sender.gate.set()
    await first
    assert sender.sent == ["one", "three"]
    assert sender.most_at_once == 1


async def test_an_answer_begun_while_an_edit_is_sent_waits_for_it() -> None:
    sender = Sender()
    sender.gate = asyncio.Event()
    queue = EditQueue(sender)
    sending = asyncio.create_task(queue.edited(Edited(1, "Felix")))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    entered: list[str] = []

    async def regenerate() -> None:
        async with queue.holding(1):
            entered.append(f"after {sender.sent}")

    regenerating = asyncio.create_task(regenerate())
    await asyncio.sleep(0)
    assert entered == []
    sender.gate.set()
    await asyncio.gather(sending, regenerating)
    assert entered == ["after ['Felix']"]
