"""The reasoning's message is told apart by the invisible mark in its header, never by its
layout alone: an answer whose own text is laid out like a reasoning is an answer (its text
is context, and a restarted bot finishes it as text), and no answer's message ever carries
the mark (it is taken out of what the bot streams)."""

from __future__ import annotations

from datetime import timedelta

import discord

from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.reasoning import (
    MARK_RELEASED,
    REASONING_HEADER,
    REASONING_MARK,
    reasoning_message,
    shows_reasoning,
    unmarked,
)
from tzurot.bot.references import is_reasoning

from .test_reasoning_not_context import WEBHOOK, message, references
from .test_unfinished_parts import FilesChannel, FilesPool, finish, unfinished

LOOKALIKE = "-# 💭 Reasoning\n||x||"
"""An answer's own text, laid out as a reasoning is (no mark)."""
SINCE = discord.utils.time_snowflake(MARK_RELEASED + timedelta(days=1))
"""A message id of a message posted since the mark."""
MARKED = f"{REASONING_HEADER}\n||x||"
"""What a model may write to pass its answer off as a reasoning."""


def test_the_reasoning_is_recognised_by_its_mark() -> None:
    assert REASONING_MARK in REASONING_HEADER
    assert shows_reasoning(reasoning_message("x"))
    assert not shows_reasoning(LOOKALIKE)


async def test_an_answer_laid_out_as_a_reasoning_is_context() -> None:
    answer = message(20, LOOKALIKE, webhook_id=WEBHOOK)
    user = message(10, "what?", webhook_id=None, replies_to=answer)
    assert not is_reasoning(answer)
    (found,) = await references(user, {20: answer})
    assert found.content == LOOKALIKE


async def test_an_answer_laid_out_as_a_reasoning_is_finished_as_text() -> None:
    """Its half shown, handed over whole: the half is its text, edited into the whole (not
    kept as a reasoning, the rest of the answer never shown). Posted since the mark (one
    posted before could be a bot of before's reasoning: test_reasoning_before_the_mark)."""
    whole = f"{LOOKALIKE}\n\n||y||"
    pool = FilesPool()
    channel = FilesChannel({SINCE: LOOKALIKE}, {})
    ids = await finish(pool, channel, unfinished((str(SINCE),), content=whole))
    assert ids == [SINCE]
    assert pool.edited == [(SINCE, whole)]
    assert (pool.sent, pool.deleted) == ([], [])


async def test_a_withheld_answer_laid_out_as_a_reasoning_says_why() -> None:
    pool = FilesPool()
    handed = unfinished((str(SINCE),), failed_reason="USER_DATA_DELETING", failed_message="gone")
    assert await finish(pool, FilesChannel({SINCE: LOOKALIKE}, {}), handed) == [SINCE]
    assert pool.deleted == []
    assert pool.edited == [(SINCE, "I couldn't answer that.\n-# gone")]


def test_unmarked_takes_out_every_mark_after_reasoning() -> None:
    assert unmarked(MARKED) == LOOKALIKE
    assert unmarked(f"-# 💭 Reasoning{REASONING_MARK * 3}\n||x||") == LOOKALIKE
    assert unmarked(f"a{REASONING_MARK}b") == f"a{REASONING_MARK}b"  # elsewhere it stays


async def test_no_message_of_a_streamed_answer_carries_the_mark() -> None:
    """Neither its first message nor one a split starts with the marked header."""
    shown: dict[int, str] = {}

    async def send(text: str) -> int:
        shown[len(shown) + 1] = text
        return len(shown)

    async def edit(message_id: int, text: str) -> None:
        shown[message_id] = text

    async def delete(message_id: int) -> None:
        del shown[message_id]

    stream = StreamedAnswer(send, edit, delete, interval=0.0)
    await stream.update(MARKED)
    assert shown == {1: LOOKALIKE}
    await stream.finish("y" * 1990 + "\n\n" + MARKED)
    assert len(shown) == 2
    assert not any(shows_reasoning(text) or REASONING_MARK in text for text in shown.values())
