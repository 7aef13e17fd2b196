"""A reasoning posted by a bot of before the mark (its header without U+2060): one of our
messages, posted before the mark was released (by its snowflake's time), is still taken for
a reasoning, so a reply to it keeps it out of the prompt and a hand-over keeps it as the
answer's reasoning. The same layout from anyone else, or posted since, is a message like any
other (an answer laid out so is no reasoning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from tzurot.bot.reasoning import MARK_RELEASED, shows_our_reasoning
from tzurot.bot.references import collect_references, is_reasoning
from tzurot.bot.splitting import split_message

from .test_reasoning_not_context import WEBHOOK, message
from .test_unfinished_parts import FilesChannel, FilesPool, finish, unfinished

LEGACY = "-# 💭 Reasoning\n||They want X||"
"""What a bot of before posted (714e1a2..5b0fb54)."""
BEFORE = discord.utils.time_snowflake(MARK_RELEASED - timedelta(days=3))
SINCE = discord.utils.time_snowflake(MARK_RELEASED + timedelta(minutes=1))


def ours(target: Any) -> bool:
    return bool(target.webhook_id == WEBHOOK)


async def references(user_message: Any, readable: dict[int, Any]) -> list[Any]:
    async def resolve(channel_id: int, message_id: int) -> Any:
        return readable.get(message_id)

    return list(
        await collect_references(
            user_message, max_depth=3, max_count=10, resolve=resolve, ours=ours
        )
    )


def test_the_mark_was_released_at_the_moment_given() -> None:
    assert datetime(2026, 12, 7, 4, 0, tzinfo=UTC) == MARK_RELEASED


async def test_a_reply_to_a_reasoning_of_before_keeps_it_out_of_the_prompt() -> None:
    reasoning = message(BEFORE, LEGACY, webhook_id=WEBHOOK)
    user = message(SINCE + 1, "why?", webhook_id=None, replies_to=reasoning)
    assert is_reasoning(reasoning, ours)
    assert await references(user, {BEFORE: reasoning}) == []


async def test_the_old_layout_posted_since_the_mark_is_context() -> None:
    """An answer laid out as a reasoning of before, posted by a bot that marks its own."""
    answer = message(SINCE, LEGACY, webhook_id=WEBHOOK)
    user = message(SINCE + 1, "why?", webhook_id=None, replies_to=answer)
    assert not is_reasoning(answer, ours)
    (found,) = await references(user, {SINCE: answer})
    assert "They want X" in found.content


async def test_the_old_layout_from_a_webhook_not_ours_is_context() -> None:
    """PluralKit's repost of a user's message, say: nothing says a bot of ours posted it."""
    theirs = message(BEFORE, LEGACY, webhook_id=WEBHOOK + 1)
    user = message(SINCE, "why?", webhook_id=None, replies_to=theirs)
    assert not is_reasoning(theirs, ours)
    assert len(await references(user, {BEFORE: theirs})) == 1


def test_only_the_layout_counts() -> None:
    assert shows_our_reasoning(LEGACY, BEFORE)
    assert shows_our_reasoning("-# 💭 Reasoning\n||long…|| (cut)", BEFORE)
    assert not shows_our_reasoning("-# 💭 Reasoning\nno spoiler", BEFORE)
    assert not shows_our_reasoning(LEGACY, SINCE)


async def test_a_whole_handover_keeps_a_reasoning_of_before() -> None:
    """Was: taken for a surplus piece of the text, and deleted."""
    pool = FilesPool()
    channel = FilesChannel({BEFORE: "Answer.", BEFORE + 1: LEGACY}, {})
    handed = unfinished((str(BEFORE), str(BEFORE + 1)), content="Answer.")
    assert await finish(pool, channel, handed) == [BEFORE, BEFORE + 1]
    assert (pool.deleted, pool.edited, pool.sent) == ([], [], [])


async def test_a_handover_never_edits_text_into_a_reasoning_of_before() -> None:
    """A piece of the text deleted meanwhile: the text is posted anew, not edited into the
    reasoning (which is no piece of it)."""
    content = ("word " * 600).strip()
    pieces = split_message(content)
    pool = FilesPool()
    channel = FilesChannel({BEFORE: pieces[0], BEFORE + 2: LEGACY}, {})
    previews = (str(BEFORE), str(BEFORE + 1), str(BEFORE + 2))
    await finish(pool, channel, unfinished(previews, content=content))
    assert all(message_id != BEFORE + 2 for message_id, _ in pool.edited)
    assert BEFORE + 2 not in pool.deleted
