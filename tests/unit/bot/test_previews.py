"""The bot tells the gateway which messages show an answer, in order, in the background."""

from __future__ import annotations

import asyncio

from tzurot.bot.previews import PreviewNotes


class Gateway:
    def __init__(self) -> None:
        self.notes: list[tuple[str, list[int]]] = []
        self.headers: list[str] = []

    async def note_preview(self, job_id: str, message_ids: list[int], reply_header: str) -> None:
        await asyncio.sleep(0.01 if not self.notes else 0)  # the first note is the slowest
        self.notes.append((job_id, message_ids))
        self.headers.append(reply_header)


async def test_notes_arrive_in_the_order_the_messages_changed() -> None:
    gateway, pending = Gateway(), set[asyncio.Task[None]]()
    preview = PreviewNotes(gateway, pending)  # type: ignore[arg-type]
    preview.shown("job-1", 11)
    preview.shown("job-1", 12)
    preview.gone("job-1", 12)
    preview.closed("job-1")  # an error is shown there now
    await asyncio.gather(*pending)
    assert gateway.notes == [
        ("job-1", [11]),
        ("job-1", [11, 12]),
        ("job-1", [11]),
        ("job-1", []),
    ]


async def test_nothing_is_noted_without_a_job_or_for_a_scheduled_turn() -> None:
    gateway, pending = Gateway(), set[asyncio.Task[None]]()
    PreviewNotes(gateway, pending).shown("", 11)  # type: ignore[arg-type]
    PreviewNotes(gateway, pending, enabled=False).shown("job-2", 21)  # type: ignore[arg-type]
    await asyncio.gather(*pending)
    assert gateway.notes == []


async def test_each_note_carries_the_reply_header_the_first_message_starts_with() -> None:
    """A restarted bot keeps it even when that first message was deleted meanwhile."""
    gateway, pending = Gateway(), set[asyncio.Task[None]]()
    header = "-# ↪ **Alice** hi · https://discord.com/channels/1/2/3\n"
    preview = PreviewNotes(gateway, pending, reply_header=header)  # type: ignore[arg-type]
    preview.shown("job-1", 11)
    preview.shown("job-1", 12)
    await asyncio.gather(*pending)
    assert gateway.notes == [("job-1", [11]), ("job-1", [11, 12])]
    assert gateway.headers == [header, header]
