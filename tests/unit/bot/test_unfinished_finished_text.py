"""A restarted bot handed an answer whose dead bot had finished its text: its files or its
reasoning show it (they are posted only once the text is finished). The text's messages show
the content with its notes (the model's footer, the "cut off" line), which the content handed
over lacks: they are kept exactly as they are, never re-split into the bare content (which
could need a message fewer: the one carrying the first images), and nothing is posted under
the files and the reasoning. And a withheld answer's notice shows even when Discord refuses
to take its reasoning or files away."""

from __future__ import annotations

from types import SimpleNamespace

import discord

from tzurot.bot.answer_notes import with_notes
from tzurot.bot.splitting import split_message

from .test_unfinished_parts import (
    REASONING,
    WITHHELD,
    FilesChannel,
    FilesPool,
    finish,
    unfinished,
)

FOOTER = "anthropic/claude-sonnet-4"
CONTENT = ("word " * 398).strip()  # 1989 characters: its notes push it over 2000


def shown_with_notes(content: str, finish_reason: str = "stop") -> list[str]:
    """The messages the live bot showed the answer in, notes included."""
    return split_message(with_notes(content, finish_reason=finish_reason, footer=FOOTER))


def forbidden() -> discord.Forbidden:
    refused = SimpleNamespace(status=403, reason="Forbidden")
    return discord.Forbidden(refused, {"code": 50013, "message": "Missing Permissions"})  # type: ignore[arg-type]  # the fields Forbidden reads


async def test_the_footers_message_keeps_its_images_and_the_answer_stays_as_shown() -> None:
    """The review's case: the footer alone is the second message, the images on it."""
    pieces = shown_with_notes(CONTENT)
    assert len(pieces) == 2
    assert len(split_message(CONTENT)) == 1  # the bare content needs one message
    channel = FilesChannel({11: pieces[0], 12: pieces[1], 13: REASONING}, {12: ["image-0.png"]})
    pool = FilesPool()
    ids = await finish(pool, channel, unfinished(content=CONTENT))
    assert ids == [11, 12, 13]
    assert (pool.edited, pool.sent, pool.deleted, pool.files_taken) == ([], [], [], [])


async def test_a_cut_off_answers_images_alone_prove_it_finished() -> None:
    """No reasoning: the images on its last message show the text was finished."""
    pieces = shown_with_notes(CONTENT, finish_reason="length")
    assert len(pieces) == 2
    channel = FilesChannel({11: pieces[0], 12: pieces[1]}, {12: ["image-0.png"]})
    pool = FilesPool()
    ids = await finish(pool, channel, unfinished(("11", "12"), content=CONTENT))
    assert ids == [11, 12]
    assert (pool.edited, pool.sent, pool.deleted, pool.files_taken) == ([], [], [], [])


async def test_a_text_message_deleted_meanwhile_is_not_posted_under_the_reasoning() -> None:
    """A moderator deleted its second message: nothing is posted below its reasoning."""
    content = ("word " * 600).strip()
    pieces = shown_with_notes(content)
    assert len(pieces) == 2
    channel = FilesChannel({11: pieces[0], 13: REASONING}, {11: ["image-0.png"]})
    pool = FilesPool()
    ids = await finish(pool, channel, unfinished(content=content))
    assert ids == [11, 13]
    assert (pool.edited, pool.sent, pool.deleted) == ([], [], [])


async def test_an_answer_with_nothing_beyond_its_text_is_still_finished() -> None:
    """Without files or reasoning nothing proves the text finished: it is edited as ever."""
    channel = FilesChannel({11: "Once upon a"}, {})
    pool = FilesPool()
    assert await finish(pool, channel, unfinished(("11",), content="Once upon a time.")) == [11]
    assert pool.edited == [(11, "Once upon a time.")]


class RefusingPool(FilesPool):
    """Discord refuses (403) to delete or to take files off any message."""

    async def delete(self, channel: object, message_id: int) -> None:
        raise forbidden()

    async def attach(self, channel: object, message_id: int, files: list[discord.File]) -> None:
        raise forbidden()


async def test_a_refused_cleanup_never_keeps_the_withheld_notice_from_showing() -> None:
    channel = FilesChannel(
        {11: "Once upon a", 12: "", 13: REASONING}, {11: ["image-0.png"], 12: ["image-10.png"]}
    )
    pool = RefusingPool()
    handed = unfinished(failed_reason="USER_DATA_DELETING", failed_message=WITHHELD)
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, f"I couldn't answer that.\n-# {WITHHELD}")]


async def test_a_cut_off_answers_notice_shows_before_its_reasoning_goes() -> None:
    """The notice is written first; what shows beyond the text is taken away after it."""
    order: list[str] = []

    class OrderPool(FilesPool):
        async def edit(self, channel: object, message_id: int, content: str, **_: object) -> None:
            order.append(f"edit {message_id}")

        async def delete(self, channel: object, message_id: int) -> None:
            order.append(f"delete {message_id}")

    channel = FilesChannel({11: "Once upon a", 13: REASONING}, {})
    handed = unfinished(("11", "13"), failed_reason="PROVIDER_UNAVAILABLE")
    assert await finish(OrderPool(), channel, handed) == [11]
    assert order == ["edit 11", "delete 13"]
