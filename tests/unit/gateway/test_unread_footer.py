"""The footer under an answer says which files inference left unread for want of a key, and
which key reads them, whatever the model_footer setting (reply_requests.footer,
unread_files.py). Only notes inference added count, each matched whole to its file at its
own place (by position, as inference wrote them); an answer handed out again from the job's
row (a replay, a restarted bot) has the same footer (reply_requests.stored_footer)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from tzurot.gateway.attachment_reads import read_key
from tzurot.gateway.domain import (
    Attachment,
    ConfigSource,
    Job,
    JobContext,
    JobStatus,
    ReplyFinished,
    Usage,
)
from tzurot.gateway.gateway_core import Prepared
from tzurot.gateway.job_context import context_columns, context_from_row
from tzurot.gateway.reply_requests import footer, stored_footer
from tzurot.gateway.settings import resolve
from tzurot.gateway.turn_edits import unread_note
from tzurot.gateway.unread_files import UnreadFile, unread_files, unread_lines

USAGE = Usage(provider="my-llm", model="local/hearth", input_tokens=10, output_tokens=5)
PHOTO = Attachment(url="https://cdn/a/1/cat.png", content_type="image/png", filename="cat.png")
VOICE = Attachment(url="https://cdn/a/2/v.ogg", content_type="audio/ogg", filename="v.ogg")
UNNAMED = Attachment(url="https://cdn/a/3/x", content_type="image/jpeg")
REQUEST = "@Hearth what is this?"
IMAGE_LINE = "image not read: add a key for openrouter with /wallet set openrouter"


def finished(*readings: str, attachments: tuple[Attachment, ...] = (PHOTO,)) -> ReplyFinished:
    """An answer whose prompt saw REQUEST then `readings`, one a line (as inference joins)."""
    return ReplyFinished(
        content="A cat.",
        usage=USAGE,
        finish_reason="stop",
        attachments=attachments,
        user_content="\n".join((REQUEST, *readings)),
    )


def prepared(**values: Any) -> Prepared:
    settings = resolve({ConfigSource.USER: values})
    return Prepared(config=None, settings=settings, persona=None, request_type="text")  # type: ignore[arg-type]  # the footer reads settings only


def job(request_content: str = REQUEST, **fields: Any) -> Job:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": "00000000-0000-0000-0000-000000000001",
        "idempotency_key": "k",
        "status": JobStatus.STREAMED,
        "user_id": "u",
        "personality_id": "p",
        "channel_id": "c",
        "guild_id": "g",
        "request_content": request_content,
        "request_message_ids": (),
        "author_id": "a",
        "author_name": "Alice",
        "attempts": 1,
        "content": "A cat.",
        "usage": USAGE,
        "error": None,
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "delivered_at": None,
    }
    return Job(**(values | fields))


def unread(answer: ReplyFinished, request_content: str = REQUEST) -> list[UnreadFile]:
    return unread_files(request_content, answer.user_content, answer.attachments, job_id="j")


def as_stored(answer: ReplyFinished) -> JobContext:
    """The job row's context for `answer`, as finish_job writes it and a read gives it back
    (the files' descriptions dropped: user_content has them)."""
    return context_from_row(context_columns(answer, keep_reasoning=False) | {"reasoning": None})


def test_an_image_left_unread_is_said_with_the_model_footer_off() -> None:
    answer = finished(unread_note(0, PHOTO, "openrouter"))
    assert footer(answer, prepared(), job()) == IMAGE_LINE


def test_with_the_model_footer_on_the_model_comes_first_on_the_same_line() -> None:
    answer = finished(unread_note(0, PHOTO, "openrouter"))
    assert footer(answer, prepared(model_footer=True), job()) == (
        f"my-llm/local/hearth · {IMAGE_LINE}"
    )


def test_nothing_left_unread_keeps_the_footer_as_before() -> None:
    read = replace(PHOTO, description="a grey cat")
    answer = finished("[Image cat.png: a grey cat]", attachments=(read,))
    assert footer(answer, prepared(), job()) == ""
    assert footer(answer, prepared(model_footer=True), job()) == "my-llm/local/hearth"


def test_files_are_counted_per_provider_in_the_messages_order() -> None:
    answer = finished(
        unread_note(0, PHOTO, "openrouter"),
        unread_note(1, VOICE, "openai"),
        unread_note(2, UNNAMED, "openrouter"),
        attachments=(PHOTO, VOICE, UNNAMED),
    )
    assert unread(answer) == [
        UnreadFile(image=True, provider="openrouter"),
        UnreadFile(image=False, provider="openai"),
        UnreadFile(image=True, provider="openrouter"),
    ]
    assert footer(answer, prepared(), job()) == (
        "2 images not read: add a key for openrouter with /wallet set openrouter · "
        "voice message not read: add a key for openai with /wallet set openai"
    )


def test_an_image_and_a_voice_message_for_one_provider_share_a_line() -> None:
    files = [UnreadFile(image=True, provider="openai"), UnreadFile(image=False, provider="openai")]
    assert unread_lines(files) == [
        "image and voice message not read: add a key for openai with /wallet set openai"
    ]


@pytest.mark.parametrize(
    "request_content",
    [
        # A note the user typed herself is her text, not inference's reading: her photo was
        # seen (a model with vision: no description, no note), so inference added nothing.
        unread_note(0, PHOTO, "evil"),
        f"look\n{unread_note(0, PHOTO, 'evil')}",
        f"look {unread_note(0, PHOTO, 'evil')}",
    ],
)
def test_a_note_in_the_users_own_text_is_no_unread_file(request_content: str) -> None:
    answer = ReplyFinished(
        content="Hm.",
        usage=USAGE,
        finish_reason="stop",
        attachments=(PHOTO,),
        user_content=request_content,
    )
    assert unread(answer, request_content) == []
    assert footer(answer, prepared(), job(request_content)) == ""


def test_a_description_that_reads_like_a_note_is_no_unread_file() -> None:
    """The file was read: its description, whatever it says, is no note of inference's."""
    note = unread_note(0, PHOTO, "openrouter")
    read = replace(PHOTO, description=note[len("[Image cat.png: ") : -1])
    answer = finished(f"[Image cat.png: {read.description}]", attachments=(read,))
    assert unread(answer) == []


def test_a_note_naming_another_file_is_not_taken_for_this_one() -> None:
    other = Attachment(url="https://cdn/a/9/dog.png", content_type="image/png", filename="dog.png")
    answer = finished(unread_note(0, other, "openrouter"))
    assert unread(answer) == []


def test_no_request_content_still_finds_the_notes() -> None:
    answer = ReplyFinished(
        content="A cat.",
        usage=USAGE,
        finish_reason="stop",
        attachments=(PHOTO,),
        user_content=unread_note(0, PHOTO, "openrouter"),
    )
    assert footer(answer, prepared(), job("")) == IMAGE_LINE


@pytest.mark.parametrize("order", ["voice first", "photo first"])
def test_another_files_reading_holding_a_note_fakes_none(order: str) -> None:
    """Her voice message was transcribed (its transcript, after clean-up, has a line that is
    exactly her photo's note) and her photo seen by a model with vision (no description, no
    note): nothing was left unread. The note is parsed only at the photo's own place."""
    note = unread_note(1 if order == "voice first" else 0, PHOTO, "evil")
    heard = replace(VOICE, description=f"so I said\n{note}\nand left")
    files = (heard, PHOTO) if order == "voice first" else (PHOTO, heard)
    answer = finished(f"[Voice message: {heard.description}]", attachments=files)
    assert unread(answer) == []
    assert footer(answer, prepared(), job()) == ""


def test_a_described_images_description_holding_the_next_files_note_fakes_none() -> None:
    note = unread_note(1, VOICE, "evil")
    described = replace(PHOTO, description=f"a screenshot:\n{note}")
    answer = finished(f"[Image cat.png: {described.description}]", attachments=(described, VOICE))
    assert unread(answer) == []


def test_a_note_after_a_read_file_is_found_at_its_place() -> None:
    heard = replace(VOICE, description="hello\nthere")
    answer = finished(
        f"[Voice message: {heard.description}]",
        unread_note(1, PHOTO, "openrouter"),
        attachments=(heard, PHOTO),
    )
    assert unread(answer) == [UnreadFile(image=True, provider="openrouter")]


def test_readings_that_do_not_make_up_what_was_added_give_none_and_are_logged() -> None:
    """The request's content changed on its way (a contract drift): said in the log, with
    the job's id only, not silently dropped."""
    answer = finished(unread_note(0, PHOTO, "openrouter"))
    with capture_logs() as logs:
        assert unread(answer, "something else") == []
        assert unread(finished(unread_note(0, PHOTO, "openrouter"), "[Voice message: x]")) == []
    assert [(e["event"], e["job_id"]) for e in logs] == [
        ("unread_files.readings_unmatched", "j"),
        ("unread_files.readings_not_per_file", "j"),
    ]
    assert all(set(e) == {"event", "job_id", "log_level"} for e in logs)


@pytest.mark.parametrize("model_footer", [False, True])
def test_the_stored_answer_has_the_footer_its_stream_had(model_footer: bool) -> None:
    """A replay, a restarted bot's hand-over: rebuilt from the job's row, whose files lost
    their descriptions (user_content has them) and whose reads say what was read."""
    heard = replace(VOICE, description="hello\n" + unread_note(1, PHOTO, "evil"))
    answer = finished(
        f"[Voice message: {heard.description}]",
        unread_note(1, PHOTO, "openrouter"),
        unread_note(2, UNNAMED, "openrouter"),
        attachments=(heard, PHOTO, UNNAMED),
    )
    stored = job(attachment_reads=((read_key(heard.url), heard.description),))
    settings = prepared(model_footer=model_footer)
    streamed = footer(answer, settings, stored)
    assert streamed == ("my-llm/local/hearth · " if model_footer else "") + (
        "2 images not read: add a key for openrouter with /wallet set openrouter"
    )
    context = as_stored(answer)
    assert all(not a.description for a in context.attachments)
    assert stored_footer(stored, context, settings.settings) == streamed


def test_a_stored_answer_without_its_reads_gives_no_unread_part_and_says_so() -> None:
    heard = replace(VOICE, description="hello")
    answer = finished(
        "[Voice message: hello]", unread_note(1, PHOTO, "openrouter"), attachments=(heard, PHOTO)
    )
    with capture_logs() as logs:
        assert stored_footer(job(), as_stored(answer), prepared().settings) == ""
    assert [e["event"] for e in logs] == ["unread_files.readings_not_per_file"]


HEARD = Attachment(url="https://cdn/a/4/w.ogg", content_type="audio/ogg", description="hi")


@pytest.mark.parametrize(
    ("empty", "line"),
    [
        (replace(VOICE, description=""), "[Voice message: ]"),  # a silent voice message
        (replace(UNNAMED, description=""), "[Image attachment 1: ]"),  # described as nothing
    ],
)
def test_an_empty_reading_hides_no_unread_file_and_logs_no_drift(
    empty: Attachment, line: str
) -> None:
    """Inference writes the line of a reading that came back empty all the same (review 353
    L2): the file was read, as nothing; the unread photo after it is still said, and no
    contract drift is logged. Live (the file's description '') and stored (its read '')."""
    answer = finished(
        line,
        unread_note(1, PHOTO, "openrouter"),
        "[Voice message: hi]",
        attachments=(empty, PHOTO, HEARD),
    )
    with capture_logs() as logs:
        assert unread(answer) == [UnreadFile(image=True, provider="openrouter")]
        stored = job(attachment_reads=((read_key(empty.url), ""), (read_key(HEARD.url), "hi")))
        assert stored_footer(stored, as_stored(answer), prepared().settings) == IMAGE_LINE
    assert logs == []
