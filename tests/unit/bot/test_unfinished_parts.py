"""A restarted bot finishing an answer whose preview notes end with what it showed beyond its
text (tzurot.bot.unfinished): the messages of its files, then its reasoning's message. An
answer handed over whole keeps them as they are (a restarted bot used to delete its
reasoning), and acknowledges them as part of it; one withheld or cut off has them deleted,
and the files attached to its text taken off. And a status line a preview shows is edited
away like the rest of the half answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord

from tzurot.bot.answer_restarts import RECOVERING_LINE
from tzurot.bot.reasoning import reasoning_message
from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.skill_output import status_line
from tzurot.bot.unfinished import finish_unfinished
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_unfinished import OUR_WEBHOOK, Channel, Pool

LILITH = common.Personality(slug="lilith", display_name="Lilith")
REASONING = reasoning_message("They asked for moons; draw two.")
WITHHELD = "your data is being deleted, as you asked"


class FilesChannel(Channel):
    """The previews as read, `files` by id: the names of the files attached to them."""

    def __init__(self, shown: dict[int, str], files: dict[int, list[str]]) -> None:
        super().__init__(shown)
        self.files = files

    async def fetch_message(self, message_id: int) -> Any:
        read = await super().fetch_message(message_id)
        read.attachments = [SimpleNamespace(filename=f) for f in self.files.get(message_id, [])]
        return read


class FilesPool(Pool):
    """The pool, and the messages whose files it took off (attachments set to none)."""

    def __init__(self, webhook_id: int | None = OUR_WEBHOOK) -> None:
        super().__init__(webhook_id)
        self.files_taken: list[int] = []

    async def attach(self, channel: object, message_id: int, files: list[discord.File]) -> None:
        assert files == []  # taking files off is all a hand-over does
        self.files_taken.append(message_id)


def answer_with_files_and_reasoning() -> FilesChannel:
    """Text 11 carrying the first files, 12 the files left over, 13 the reasoning."""
    return FilesChannel(
        {11: "Once upon a", 12: "", 13: REASONING},
        {11: ["image-0.png"], 12: ["image-10.png"]},
    )


def unfinished(
    previews: tuple[str, ...] = ("11", "12", "13"), **fields: Any
) -> gw.UnfinishedAnswer:
    return gw.UnfinishedAnswer(
        job_id="job-1", personality=LILITH, preview_message_ids=previews, **fields
    )


async def finish(pool: Pool, channel: Channel, handed: gw.UnfinishedAnswer) -> list[int]:
    return await finish_unfinished(pool, channel, handed)  # type: ignore[arg-type]  # fakes of the pool and the channel


async def test_an_answer_handed_over_whole_keeps_its_files_and_reasoning() -> None:
    pool = FilesPool()
    ids = await finish(
        pool, answer_with_files_and_reasoning(), unfinished(content="Once upon a time.")
    )
    assert ids == [11, 12, 13]  # all of it acknowledged, delivered as one answer
    # Its files and reasoning prove its text was finished: nothing is edited either.
    assert (pool.edited, pool.sent, pool.deleted, pool.files_taken) == ([], [], [], [])


async def test_a_withheld_answer_keeps_nothing_beyond_why() -> None:
    pool = FilesPool()
    handed = unfinished(failed_reason="USER_DATA_DELETING", failed_message=WITHHELD)
    ids = await finish(pool, answer_with_files_and_reasoning(), handed)
    assert ids == [11]
    assert pool.edited == [(11, f"I couldn't answer that.\n-# {WITHHELD}")]
    assert pool.deleted == [12, 13]  # its files' message and its reasoning
    assert pool.files_taken == [11]
    assert pool.sent == []


async def test_an_answer_cut_off_for_good_keeps_nothing_beyond_the_notice() -> None:
    pool = FilesPool()
    ids = await finish(
        pool, answer_with_files_and_reasoning(), unfinished(failed_reason="PROVIDER_UNAVAILABLE")
    )
    assert ids == [11]
    assert pool.deleted == [12, 13]
    assert pool.files_taken == [11]


async def test_a_withheld_answer_whose_text_is_gone_still_loses_its_reasoning() -> None:
    pool = FilesPool()
    channel = FilesChannel({13: REASONING}, {})
    handed = unfinished(failed_reason="USER_DATA_DELETING", failed_message=WITHHELD)
    assert await finish(pool, channel, handed) == []
    assert (pool.deleted, pool.edited, pool.sent) == ([13], [], [])


async def test_without_a_webhook_of_ours_nothing_is_taken_and_none_made() -> None:
    """No webhook of the channel's can reach the dead bot's messages: they stay (logged)."""
    pool = FilesPool(webhook_id=None)
    handed = unfinished(failed_reason="USER_DATA_DELETING", failed_message=WITHHELD)
    assert await finish(pool, answer_with_files_and_reasoning(), handed) == []
    assert (pool.deleted, pool.files_taken, pool.sent) == ([], [], [])


async def test_a_text_that_starts_like_a_reasoning_but_is_not_last_is_text() -> None:
    """Only the last preview can be the reasoning: one before it is a piece of the text."""
    pool = FilesPool()
    channel = FilesChannel({11: REASONING, 12: "more"}, {})
    handed = unfinished(("11", "12"), content="The whole answer.")
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, "The whole answer.")]
    assert pool.deleted == [12]


async def test_a_preview_showing_the_recovering_line_is_edited_into_the_answer() -> None:
    """The dead bot died while it waited to ask again: its line goes, even where the text
    above it is the answer's already."""
    pool = FilesPool()
    channel = FilesChannel({11: f"Once upon a time.\n{RECOVERING_LINE}"}, {})
    handed = unfinished(("11",), content="Once upon a time.")
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, "Once upon a time.")]


async def test_a_preview_showing_a_skills_status_line_keeps_its_header_only() -> None:
    header = f"{REPLY_QUOTE_PREFIX} **Alice** draw me moons · https://discord.com/channels/1/2/3"
    pool = FilesPool()
    channel = FilesChannel({11: f"{header}\n{status_line('Lilith', 'generate_image')}"}, {})
    handed = unfinished(("11",), content="Two moons.")
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, f"{header}\nTwo moons.")]
