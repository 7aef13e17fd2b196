"""An edited message's turn: the edit replaces the request's content, what inference read of
the message's files stays after it."""

import pytest

from tzurot.gateway.turn_edits import edited_turn_content, read_from_files

IMAGE = "[Image cat.png: a grey cat asleep on a red sofa]"
VOICE = "[Voice message: Hello, Lilith.\n\nHow are you?]"
FORWARD = "[forwarded a message]\n> the fog horn is broken"
NOT_READ = "[notes.pdf: not read; only images and audio are supported]"


def prompt_saw(request: str, *readings: str) -> str:
    """The user's turn as inference makes it (`ReplyFinished.user_content`)."""
    return "\n".join(part for part in (request, *readings) if part)


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
    assert read_from_files("my cat is called Tom", user_content) == ""
    assert edited_turn_content("Felix", "my cat is called Tom", user_content) == "Felix"
