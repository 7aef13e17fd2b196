"""The footer that says a file was left unread for want of a key (gateway unread_files.py) is
one small line under the answer, like the model's: a restarted bot handed the answer knows
it for a footer (answer_notes.as_shown: the answer is kept as shown, not edited into its bare
content), and a chain reply's quote leaves it out (chain_quote.said)."""

from __future__ import annotations

from tzurot.bot.answer_notes import as_shown, with_notes
from tzurot.bot.chain_quote import said
from tzurot.bot.splitting import split_message

from .test_unfinished_parts import REASONING, FilesChannel, FilesPool, finish, unfinished

UNREAD = "image not read: add a key for openrouter with /wallet set openrouter"
WITH_MODEL = f"my-llm/local/hearth · {UNREAD}"
CONTENT = ("word " * 398).strip()  # 1989 characters: its footer pushes it over 2000


def test_it_is_one_small_line_under_the_answer() -> None:
    for footer in (UNREAD, WITH_MODEL):
        shown = with_notes("A cat.", finish_reason="stop", footer=footer)
        assert shown == f"A cat.\n-# {footer}"
        assert said(shown) == "A cat."


def test_a_restarted_bot_reads_it_as_a_footer() -> None:
    for footer in (UNREAD, WITH_MODEL):
        shown = with_notes("A cat.", finish_reason="length", footer=footer)
        assert shown in as_shown("A cat.", shown.rsplit("\n", 1)[-1])


async def test_an_answer_showing_it_is_kept_as_shown_by_a_restarted_bot() -> None:
    pieces = split_message(with_notes(CONTENT, finish_reason="stop", footer=UNREAD))
    assert len(pieces) == 2  # the footer alone on the second message, the images on it
    channel = FilesChannel({11: pieces[0], 12: pieces[1], 13: REASONING}, {12: ["image-0.png"]})
    pool = FilesPool()
    ids = await finish(pool, channel, unfinished(content=CONTENT))
    assert ids == [11, 12, 13]
    assert (pool.edited, pool.sent, pool.deleted, pool.files_taken) == ([], [], [], [])


async def test_a_half_answer_is_finished_with_the_footer_handed_over() -> None:
    """The dead bot showed half the answer; the gateway hands the rest over with the footer
    the dead bot would have shown (UnfinishedAnswer.footer): it is edited in under the
    answer, as a live answer's."""
    pool = FilesPool()
    channel = FilesChannel({11: "A grey"}, {})
    handed = unfinished(("11",), content="A grey cat.", footer=UNREAD)
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, f"A grey cat.\n-# {UNREAD}")]


async def test_a_hand_over_without_a_footer_is_edited_into_the_bare_answer() -> None:
    """An older gateway's, or an answer with nothing under it."""
    pool = FilesPool()
    channel = FilesChannel({11: "A grey"}, {})
    assert await finish(pool, channel, unfinished(("11",), content="A grey cat.")) == [11]
    assert pool.edited == [(11, "A grey cat.")]


async def test_a_notice_carries_no_footer() -> None:
    """No answer (it could not be generated again): the failure notice alone."""
    pool = FilesPool()
    channel = FilesChannel({11: "A grey"}, {})
    handed = unfinished(("11",), failed_reason="PROVIDER_UNAVAILABLE", footer=UNREAD)
    await finish(pool, channel, handed)
    assert [i for i, _ in pool.edited] == [11]  # the notice shows
    assert all(UNREAD not in text for _, text in pool.edited)


async def test_a_preview_showing_the_whole_text_without_the_footer_gets_it() -> None:
    """The dead bot's last preview had the whole text, and it died before its final edit
    put the footer under it: not the answer as it would have finished it, so it is edited."""
    pool = FilesPool()
    channel = FilesChannel({11: "A grey cat."}, {})
    handed = unfinished(("11",), content="A grey cat.", footer=UNREAD)
    assert await finish(pool, channel, handed) == [11]
    assert pool.edited == [(11, f"A grey cat.\n-# {UNREAD}")]


async def test_an_answer_shown_finished_with_its_footer_is_kept_as_shown() -> None:
    pool = FilesPool()
    channel = FilesChannel({11: f"A grey cat.\n-# {UNREAD}"}, {})
    handed = unfinished(("11",), content="A grey cat.", footer=UNREAD)
    assert await finish(pool, channel, handed) == [11]
    assert (pool.edited, pool.sent) == ([], [])


async def test_a_footer_richer_than_the_one_handed_over_is_kept() -> None:
    """The dead bot showed the unread file; the footer rebuilt from the row lacks it (its
    reading was not recorded): the line the user saw stays, nothing is edited."""
    pool = FilesPool()
    channel = FilesChannel({11: f"A grey cat.\n-# {WITH_MODEL}"}, {})
    handed = unfinished(("11",), content="A grey cat.", footer="my-llm/local/hearth")
    assert await finish(pool, channel, handed) == [11]
    assert (pool.edited, pool.sent) == ([], [])


async def test_a_footer_that_changed_since_the_answer_is_kept() -> None:
    """model_footer turned on between the answer and its hand-over: the answer shown with its
    unread line is kept, not edited to add the model."""
    pool = FilesPool()
    channel = FilesChannel({11: f"A grey cat.\n-# {UNREAD}"}, {})
    handed = unfinished(("11",), content="A grey cat.", footer=WITH_MODEL)
    assert await finish(pool, channel, handed) == [11]
    assert (pool.edited, pool.sent) == ([], [])


async def test_a_cut_off_answer_shown_with_another_footer_is_kept() -> None:
    shown = with_notes("A grey cat.", finish_reason="length", footer=WITH_MODEL)
    pool = FilesPool()
    channel = FilesChannel({11: shown}, {})
    handed = unfinished(("11",), content="A grey cat.", footer=UNREAD)
    assert await finish(pool, channel, handed) == [11]
    assert (pool.edited, pool.sent) == ([], [])
