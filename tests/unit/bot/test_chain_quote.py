"""The answer a chain reply quotes (chain_quote): what the personality said, without our own
lines around it; nothing to quote when it cannot be read."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from tzurot.bot.answer_notes import CUT_OFF_LINE
from tzurot.bot.chain_quote import answered_message, said


class _Response:
    status, reason = 404, "gone"


class Channel:
    """A channel whose fetch_message answers `found`, or raises it."""

    def __init__(self, found: Any) -> None:
        self.found = found
        self.fetched: list[int] = []

    async def fetch_message(self, message_id: int) -> Any:
        self.fetched.append(message_id)
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("Plain words.", "Plain words."),
        ("-# ↪ **Alice** hi · https://x\nHello, Alice.", "Hello, Alice."),
        (f"-# ↪ **Alice** hi · https://x\nIt began\n{CUT_OFF_LINE}\n-# or/m", "It began"),
        ("First line\n-# its own subtext\nlast line", "First line\n-# its own subtext\nlast line"),
    ],
)
def test_only_what_the_personality_said_is_quoted(content: str, text: str) -> None:
    assert said(content) == text


async def test_the_answered_message_is_fetched_with_what_it_said() -> None:
    message = SimpleNamespace(content="-# ↪ **Alice** hi · https://x\nHello.\n-# or/m")
    channel = Channel(message)
    found = await answered_message(channel, "123")  # type: ignore[arg-type]  # a fake channel
    assert id(found) == id(message)  # the message fetched, its content what it said
    assert (channel.fetched, message.content) == ([123], "Hello.")


@pytest.mark.parametrize(
    "error",
    [
        discord.NotFound(_Response(), {"code": 10008, "message": "Unknown Message"}),  # type: ignore[arg-type]  # the fields HTTPException reads
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
    ],
)
async def test_a_message_gone_or_out_of_reach_is_not_quoted(error: Exception) -> None:
    assert await answered_message(Channel(error), "123") is None  # type: ignore[arg-type]  # a fake channel


async def test_no_id_nothing_fetched() -> None:
    channel = Channel(SimpleNamespace(content="x"))
    assert await answered_message(channel, "") is None  # type: ignore[arg-type]  # a fake channel
    assert channel.fetched == []
