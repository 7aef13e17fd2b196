"""A reply to the reasoning message under an answer (tzurot.bot.reasoning) is a reply to that
answer, but the reasoning is no context: its text never reaches the prompt (the request's
references), nor are the links in it followed. A user's own message laid out the same way is
a message like any other."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import discord

from tzurot.bot.reasoning import CUT_MARK, reasoning_message, shows_reasoning
from tzurot.bot.references import collect_references

WEBHOOK = 55
LINK = "https://discord.com/channels/1/2/{}"


def message(
    message_id: int, content: str, *, webhook_id: int | None, replies_to: Any = None
) -> Any:
    """A discord.Message as the reference walk reads it (the message replied to is read
    through the resolver: a fake is no resolved discord.Message)."""
    reference = None
    if replies_to is not None:
        reference = SimpleNamespace(
            message_id=replies_to.id,
            channel_id=2,
            resolved=None,
            type=discord.MessageReferenceType.default,  # a reply's, not a forward's
        )
    return SimpleNamespace(
        id=message_id,
        content=content,
        webhook_id=webhook_id,
        reference=reference,
        author=SimpleNamespace(id=900 + message_id, display_name="Lilith"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        attachments=[],
    )


async def references(user_message: Any, readable: dict[int, Any]) -> list[Any]:
    async def resolve(channel_id: int, message_id: int) -> Any:
        return readable.get(message_id)

    found = await collect_references(user_message, max_depth=3, max_count=10, resolve=resolve)
    return list(found)


async def test_a_reply_to_the_reasoning_puts_none_of_it_in_the_prompt() -> None:
    linked = message(30, "a message the reasoning links to", webhook_id=None)
    reasoning = message(
        20, reasoning_message(f"They want X; see {LINK.format(30)}"), webhook_id=WEBHOOK
    )
    user = message(10, "why do you think so?", webhook_id=None, replies_to=reasoning)
    assert await references(user, {20: reasoning, 30: linked}) == []


async def test_a_link_to_the_reasoning_puts_none_of_it_in_the_prompt() -> None:
    reasoning = message(20, reasoning_message("secret plan"), webhook_id=WEBHOOK)
    user = message(10, f"look: {LINK.format(20)}", webhook_id=None)
    assert await references(user, {20: reasoning}) == []


async def test_a_reply_to_the_answer_itself_still_references_it() -> None:
    answer = message(19, "Yes.", webhook_id=WEBHOOK)
    user = message(10, "why?", webhook_id=None, replies_to=answer)
    (found,) = await references(user, {19: answer})
    assert (found.message_id, found.content) == ("19", "Yes.")


async def test_a_users_message_laid_out_as_a_reasoning_is_context_like_any() -> None:
    """Only a webhook's message can be one of ours: a user writing the same layout is read."""
    written = message(20, reasoning_message("my own words"), webhook_id=None)
    user = message(10, "what about this?", webhook_id=None, replies_to=written)
    (found,) = await references(user, {20: written})
    assert found.content == written.content


def test_every_reasoning_message_is_recognised_cut_or_whole() -> None:
    assert shows_reasoning(reasoning_message("Hm || pipes | and ``` fences"))
    cut = reasoning_message("x" * 5000)
    assert cut.endswith(CUT_MARK)
    assert shows_reasoning(cut)
    assert not shows_reasoning("-# 💭 Reasoning is what I do")
    assert not shows_reasoning("Yes.")
