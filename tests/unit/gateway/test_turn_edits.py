"""An edited message's turn: the edit replaces the request's content, what inference read of
the message's files stays after it (but a file the edit took off leaves its reading)."""

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from tzurot.gateway.domain import Attachment, Job, JobContext, JobStatus
from tzurot.gateway.turn_edits import (
    MessageEdit,
    edited_turn,
    read_from_files,
    reading_of,
    unread_note,
)

IMAGE = "[Image cat.png: a grey cat asleep on a red sofa]"
VOICE = "[Voice message: Hello, Lilith.\n\nHow are you?]"
FORWARD = "[forwarded a message]\n> the fog horn is broken"
NOT_READ = "[notes.pdf: not read; only images and audio are supported]"


def prompt_saw(request: str, *readings: str) -> str:
    """The user's turn as inference makes it (`ReplyFinished.user_content`)."""
    return "\n".join(part for part in (request, *readings) if part)


def job(request_content: str, *, reads: dict[str, str] | None = None) -> Job:
    return Job(
        id="job-1",
        idempotency_key="msg-1:lilith",
        status=JobStatus.DELIVERED,
        user_id="u-1",
        personality_id="p-lilith",
        channel_id="c-1",
        guild_id="g-1",
        request_content=request_content,
        request_message_ids=("msg-1",),
        author_id="100",
        author_name="Alice",
        attempts=1,
        content="A fine cat.",
        usage=None,
        error=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        started_at=None,
        finished_at=None,
        delivered_at=None,
        attachment_reads=tuple((reads or {}).items()),
    )


def edited_turn_content(edited: str, request_content: str, user_content: str | None) -> str:
    return edited_turn(MessageEdit(edited), job(request_content), JobContext(user_content))


@pytest.mark.parametrize(
    ("request_content", "readings"),
    [
        ("my cat is called Tom", (IMAGE,)),
        ("listen", (VOICE, IMAGE)),
        (f"what of this?\n{FORWARD}", (IMAGE,)),
        (f"look\n{NOT_READ}", (VOICE,)),
        ("", (IMAGE,)),  # an image alone: nothing typed
        (f"\n{NOT_READ}", (IMAGE,)),  # nothing typed, a file not read
    ],
)
def test_the_readings_are_what_inference_added(request_content: str, readings: tuple[str]) -> None:
    assert read_from_files(request_content, prompt_saw(request_content, *readings)) == "\n".join(
        readings
    )


def test_an_edit_keeps_the_readings_after_the_new_text() -> None:
    user_content = prompt_saw(f"is he Tom?\n{FORWARD}", IMAGE, VOICE)
    edited = edited_turn_content(f"is he Felix?\n{FORWARD}", f"is he Tom?\n{FORWARD}", user_content)
    assert edited == f"is he Felix?\n{FORWARD}\n{IMAGE}\n{VOICE}"


def test_text_added_to_an_image_alone_comes_before_its_description() -> None:
    assert edited_turn_content("it is Tom", "", IMAGE) == f"it is Tom\n{IMAGE}"


def test_an_edit_that_empties_the_text_leaves_the_readings() -> None:
    assert edited_turn_content("", "my cat", prompt_saw("my cat", IMAGE)) == IMAGE


@pytest.mark.parametrize(
    "user_content",
    [
        None,  # the prompt saw the request as it was (no file read)
        "",
        "my cat is called Tom",  # the same
        "something else entirely",  # not made from this request: nothing to keep
        "my cat is called Tommy",  # the request is a prefix, but not a line of its own
    ],
)
def test_without_readings_the_edit_is_the_new_text(user_content: str | None) -> None:
    assert not read_from_files("my cat is called Tom", user_content)
    assert edited_turn_content("Felix", "my cat is called Tom", user_content) == "Felix"


def test_readings_not_found_are_logged_by_ids_only() -> None:
    with capture_logs() as logs:
        assert edited_turn_content("Felix", "my cat is Tom", "my cat is Tommy\n" + IMAGE) == "Felix"
    assert logs == [
        {"event": "turn_edit.readings_unmatched", "job_id": "job-1", "log_level": "warning"}
    ]


CAT = Attachment("https://cdn.example/a/1/cat.png?ex=1", "image/png", "cat.png")
VOICE_FILE = Attachment("https://cdn.example/a/2/voice.ogg?ex=1", "audio/ogg", "voice.ogg")
DOG = Attachment("https://cdn.example/a/3/dog.png?ex=1", "image/png", "")
SEEN_BY_VISION = Attachment("https://cdn.example/a/4/fox.png", "image/png", "fox.png")
DOG_SEEN = "[Image attachment 3: a dog]"
READS = {
    "https://cdn.example/a/1/cat.png": "a grey cat asleep on a red sofa",
    "https://cdn.example/a/2/voice.ogg": "Hello, Lilith.\n\nHow are you?",
    "https://cdn.example/a/3/dog.png": "a dog",
}


def test_readings_are_made_again_as_inference_makes_them() -> None:
    assert reading_of(0, CAT, READS) == IMAGE
    assert reading_of(1, VOICE_FILE, READS) == VOICE
    assert reading_of(2, DOG, READS) == DOG_SEEN
    assert reading_of(3, SEEN_BY_VISION, READS) == ""


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        (None, (IMAGE, VOICE, DOG_SEEN)),  # an older bot: all stay
        (
            ["https://cdn.example/a/1/cat.png?ex=2", "https://cdn.example/a/3/dog.png"],
            (IMAGE, DOG_SEEN),
        ),
        (["https://cdn.example/a/2/voice.ogg", "https://cdn.example/a/4/fox.png"], (VOICE,)),
        ([], ()),
    ],
)
def test_a_file_no_longer_shown_leaves_its_reading(
    shown: list[str] | None, kept: tuple[str, ...]
) -> None:
    readings = (IMAGE, VOICE, DOG_SEEN)
    context = JobContext(
        prompt_saw("look", *readings), attachments=(CAT, VOICE_FILE, DOG, SEEN_BY_VISION)
    )
    edited = edited_turn(MessageEdit("look again", files=shown), job("look", reads=READS), context)
    assert edited == "\n".join(["look again", *kept])


def test_readings_not_told_apart_by_file_all_stay() -> None:
    """What was read is not on the job (or not as inference writes it today): none is
    dropped, and that is logged."""
    context = JobContext(prompt_saw("look", IMAGE), attachments=(CAT,))
    with capture_logs() as logs:
        edited = edited_turn(MessageEdit("look again", files=[]), job("look"), context)
    assert edited == f"look again\n{IMAGE}"
    assert [entry["event"] for entry in logs] == ["turn_edit.readings_not_per_file"]


UNREAD_CAT = (
    "[Image cat.png: not read; describing it needed an API key for paidai (/wallet set paidai)]"
)
UNREAD_VOICE = (
    "[Voice message voice.ogg: not read; transcribing it needed an API key for openai "
    "(/wallet set openai)]"
)


def test_an_unread_files_note_is_made_again_with_the_provider_it_names() -> None:
    assert unread_note(0, CAT, "paidai") == UNREAD_CAT
    assert unread_note(1, VOICE_FILE, "openai") == UNREAD_VOICE
    assert unread_note(2, DOG, "paidai").startswith("[Image attachment 3: not read; ")


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        (["https://cdn.example/a/1/cat.png"], (UNREAD_CAT,)),  # the described dog taken off
        (["https://cdn.example/a/3/dog.png"], (DOG_SEEN,)),
        (
            ["https://cdn.example/a/2/voice.ogg", "https://cdn.example/a/3/dog.png"],
            (UNREAD_VOICE, DOG_SEEN),
        ),
    ],
)
def test_a_file_left_unread_keeps_its_note_apart_from_the_others(
    shown: list[str], kept: tuple[str, ...]
) -> None:
    """An image and a voice message left unread for want of a key (their notes), beside a
    described image: an edit taking a file off drops its line only (review 327 L1: the
    notes were not made again, so every reading was kept, the removed one's too)."""
    readings = (UNREAD_CAT, UNREAD_VOICE, DOG_SEEN)
    context = JobContext(prompt_saw("look", *readings), attachments=(CAT, VOICE_FILE, DOG))
    reads = {"https://cdn.example/a/3/dog.png": "a dog"}
    with capture_logs() as logs:
        edited = edited_turn(
            MessageEdit("look again", files=shown), job("look", reads=reads), context
        )
    assert edited == "\n".join(["look again", *kept])
    assert logs == []


@pytest.mark.parametrize(
    "note",
    [
        UNREAD_CAT.replace("cat.png", "dog.png"),  # another file's
        UNREAD_CAT.replace("(/wallet set paidai)", "(/wallet set openai)"),  # two providers
        UNREAD_CAT.replace("needed", "needs"),  # not as inference writes it
        UNREAD_CAT + " and more",
    ],
)
def test_a_note_not_as_inference_writes_it_keeps_every_reading(note: str) -> None:
    readings = (note, DOG_SEEN)
    context = JobContext(prompt_saw("look", *readings), attachments=(CAT, DOG))
    reads = {"https://cdn.example/a/3/dog.png": "a dog"}
    shown = ["https://cdn.example/a/1/cat.png"]
    with capture_logs() as logs:
        edited = edited_turn(
            MessageEdit("look again", files=shown), job("look", reads=reads), context
        )
    assert edited == "\n".join(["look again", *readings])
    assert [entry["event"] for entry in logs] == ["turn_edit.readings_not_per_file"]


SILENT = Attachment("https://cdn.example/a/5/silent.ogg", "audio/ogg", "silent.ogg")


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        (["https://cdn.example/a/1/cat.png"], (IMAGE,)),
        (["https://cdn.example/a/5/silent.ogg"], ("[Voice message: ]",)),
    ],
)
def test_an_empty_reading_is_told_apart_from_the_others(
    shown: list[str], kept: tuple[str, ...]
) -> None:
    """A silent voice message's transcript is '': inference still writes its line (review 353
    L2: it was not made again, so no reading could be told apart and all were kept)."""
    readings = ("[Voice message: ]", IMAGE)
    context = JobContext(prompt_saw("look", *readings), attachments=(SILENT, CAT))
    reads = {"https://cdn.example/a/5/silent.ogg": "", **READS}
    with capture_logs() as logs:
        edited = edited_turn(
            MessageEdit("look again", files=shown), job("look", reads=reads), context
        )
    assert edited == "\n".join(["look again", *kept])
    assert logs == []
