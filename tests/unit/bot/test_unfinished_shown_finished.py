"""A text-only answer (no files, no reasoning) its bot had finished before it died (or whose
ConfirmDelivery failed): its previews show the whole content handed over, with the notes the
bot puts under it (the "cut off" line, the model's footer). It is kept as shown, as an answer
showing files or reasoning is: the notes stay, no message is deleted for carrying only them,
and a message a moderator deleted in the middle of it is not posted again. A half answer, or
one whose last message is gone (it looks the same), is finished as before."""

from __future__ import annotations

from tzurot.bot.answer_notes import CUT_OFF_LINE, with_notes
from tzurot.bot.splitting import split_message

from .test_unfinished_parts import FilesChannel, FilesPool, finish, unfinished

HEADER = "-# ↪ **Ada** tell me · https://discord.com/channels/1/2/3\n"


def shown(content: str, *, prefix: str = "", reason: str = "stop", footer: str = "") -> list[str]:
    return split_message(prefix + with_notes(content, finish_reason=reason, footer=footer))


def channel_of(pieces: list[str], *, gone: tuple[int, ...] = ()) -> FilesChannel:
    return FilesChannel({11 + i: piece for i, piece in enumerate(pieces) if 11 + i not in gone}, {})


def previews(count: int) -> tuple[str, ...]:
    return tuple(str(11 + i) for i in range(count))


async def test_the_cut_off_line_and_footer_stay_with_the_message_holding_them() -> None:
    content = ("word " * 398).strip()
    pieces = shown(content, reason="length", footer="anthropic/claude-x")
    assert len(pieces) == 2  # the notes alone pushed the text into a second message
    pool = FilesPool()
    ids = await finish(pool, channel_of(pieces), unfinished(previews(2), content=content))
    assert ids == [11, 12]
    assert (pool.edited, pool.sent, pool.deleted) == ([], [], [])


async def test_one_message_with_its_footer_keeps_it() -> None:
    pieces = shown("Once upon a time.", footer="openrouter/some-model")
    pool = FilesPool()
    handed = unfinished(previews(1), content="Once upon a time.")
    assert await finish(pool, channel_of(pieces), handed) == [11]
    assert pool.edited == []  # was: edited into the bare content, the footer lost


async def test_with_its_reply_header_and_a_code_block_left_open() -> None:
    content = "Here:\n```py\nprint('cut')"
    pieces = shown(content, prefix=HEADER, reason="length")
    assert pieces[-1].endswith(f"```\n{CUT_OFF_LINE}")
    pool = FilesPool()
    handed = unfinished(previews(len(pieces)), content=content, reply_header=HEADER)
    assert await finish(pool, channel_of(pieces), handed) == [11]
    assert (pool.edited, pool.sent) == ([], [])


async def test_a_message_a_moderator_deleted_mid_answer_is_not_posted_again() -> None:
    content = ("word " * 1000).strip()
    pieces = shown(content, footer="m/x")
    assert len(pieces) == 3
    pool = FilesPool()
    channel = channel_of(pieces, gone=(12,))
    ids = await finish(pool, channel, unfinished(previews(3), content=content))
    assert ids == [11, 13]
    assert (pool.edited, pool.sent, pool.deleted) == ([], [], [])


async def test_a_finished_answer_without_notes_is_kept_too() -> None:
    content = ("word " * 1000).strip()
    pieces = shown(content)
    pool = FilesPool()
    ids = await finish(
        pool, channel_of(pieces, gone=(12,)), unfinished(previews(3), content=content)
    )
    assert ids == [11, 13]
    assert pool.sent == []


async def test_its_last_message_gone_it_is_finished_as_a_half_answer_is() -> None:
    """Its last message deleted, the answer looks as one whose bot died mid-stream: the rest
    is posted."""
    content = ("word " * 600).strip()
    pieces = shown(content, footer="m/x")
    pool = FilesPool()
    ids = await finish(
        pool, channel_of(pieces, gone=(12,)), unfinished(previews(2), content=content)
    )
    assert ids == [11, 901]
    assert pool.sent == [split_message(content)[1]]


async def test_a_line_that_is_no_note_makes_it_a_half_answer() -> None:
    """Under the whole text, only the cut-off line and a footer: a status line (it ends in
    "…"), or a line the content lacks, is edited away."""
    content = "Once upon a time."
    for under in ("-# Lilith is thinking…", "and then"):
        pool = FilesPool()
        channel = FilesChannel({11: f"{content}\n{under}"}, {})
        assert await finish(pool, channel, unfinished(previews(1), content=content)) == [11]
        assert pool.edited == [(11, content)]


async def test_a_half_answer_is_still_finished() -> None:
    content = ("word " * 600).strip()
    pool = FilesPool()
    channel = FilesChannel({11: "word word"}, {})
    ids = await finish(pool, channel, unfinished(previews(1), content=content))
    assert ids == [11, 901]
    assert pool.edited == [(11, split_message(content)[0])]
