"""The reasoning message posted under an answer is noted with the answer's preview, so a bot
that dies before confirming the answer leaves it to its successor with the rest: finishing the
preview into the answer (or into why it is withheld) deletes it, instead of leaving a
reasoning spoiler under an answer that no longer owns it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.previews import PreviewNotes
from tzurot.bot.reasoning import REASONING_HEADER, post_reasoning
from tzurot.bot.unfinished import finish_unfinished
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_unfinished import Channel, Pool

LILITH = common.Personality(slug="lilith", display_name="Lilith")


class Gateway:
    """NoteAnswerPreview: each note, in order."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, list[int]]] = []

    async def note_preview(self, job_id: str, message_ids: list[int], reply_header: str) -> None:
        self.notes.append((job_id, list(message_ids)))


class Webhooks:
    async def send(self, channel: object, content: str, **_: Any) -> Any:
        return SimpleNamespace(id=77)


HOOKS: Any = Webhooks()  # a fake of the pool
CHANNEL: Any = object()  # no channel is read


def answer() -> Answer:
    found = Answer(LILITH, 7, object(), gw.GenerateRequest(), shown=LILITH)  # type: ignore[arg-type]  # no channel is read
    found.job_id = "job-1"
    return found


async def test_the_reasoning_message_is_noted_with_the_answers_preview() -> None:
    gateway, pending = Gateway(), set[asyncio.Task[None]]()
    preview = PreviewNotes(gateway, pending)  # type: ignore[arg-type]  # a fake gateway
    preview.shown("job-1", 11)  # the answer streamed as 11 and 12
    preview.shown("job-1", 12)
    ids = await post_reasoning(HOOKS, AnswerBook(10), CHANNEL, answer(), "Hm.", preview=preview)
    await asyncio.gather(*pending)
    assert ids == [77]
    assert gateway.notes[-1] == ("job-1", [11, 12, 77])


async def test_no_reasoning_notes_nothing_more() -> None:
    gateway, pending = Gateway(), set[asyncio.Task[None]]()
    preview = PreviewNotes(gateway, pending)  # type: ignore[arg-type]  # a fake gateway
    preview.shown("job-1", 11)
    assert (
        await post_reasoning(HOOKS, AnswerBook(10), CHANNEL, answer(), " ", preview=preview) == []
    )
    await asyncio.gather(*pending)
    assert gateway.notes == [("job-1", [11])]


async def test_a_restarted_bot_finishing_the_answer_deletes_its_noted_reasoning() -> None:
    """Why noting it is enough (tzurot.bot.unfinished): the answer fills its own messages
    again, and what is left over, the reasoning, is deleted."""
    pool = Pool()
    channel = Channel({11: "The whole answer.", 77: f"{REASONING_HEADER}\n||Hm.||"})
    unfinished = gw.UnfinishedAnswer(
        job_id="job-1",
        personality=LILITH,
        content="The whole answer.",
        preview_message_ids=["11", "77"],
    )
    assert await finish_unfinished(pool, channel, unfinished) == [11]  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (pool.sent, pool.deleted) == ([], [77])


async def test_a_withheld_answers_noted_reasoning_is_deleted_with_it() -> None:
    pool = Pool()
    channel = Channel({11: "Once upon a", 77: f"{REASONING_HEADER}\n||Hm.||"})
    unfinished = gw.UnfinishedAnswer(
        job_id="job-1",
        personality=LILITH,
        preview_message_ids=["11", "77"],
        failed_reason="USER_DATA_DELETING",
        failed_message="your data is being deleted, as you asked",
    )
    assert await finish_unfinished(pool, channel, unfinished) == [11]  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert pool.deleted == [77]
    assert pool.edited == [
        (11, "I couldn't answer that.\n-# your data is being deleted, as you asked")
    ]
