"""The mark a clone carries in the user's ElevenLabs account: written, read back, never read
into a voice that is not ours."""

import pytest

from tzurot.inference.clone_marks import (
    MAX_DESCRIPTION,
    CloneMark,
    marked_description,
    new_mark,
    read_mark,
    valid_personality_id,
)

PERSONALITY = "0b6c7a52-3f0e-4c8e-9d43-6f1f4b8f5e21"


def test_a_mark_reads_back_from_the_description_it_ends() -> None:
    mark = new_mark(PERSONALITY)
    described = marked_description("Tzurot personality nova", mark)
    assert described.startswith("Tzurot personality nova [tzurot-clone p=")
    assert read_mark(described) == mark
    assert read_mark(marked_description("", mark)) == mark
    unowned = new_mark("")
    assert read_mark(marked_description("x", unowned)) == CloneMark("", unowned.attempt)
    assert new_mark(PERSONALITY).attempt != mark.attempt


def test_the_description_stays_within_the_vendors_limit() -> None:
    mark = new_mark(PERSONALITY)
    described = marked_description("word " * 400, mark)
    assert len(described) <= MAX_DESCRIPTION
    assert read_mark(described) == mark


@pytest.mark.parametrize(
    "description",
    [
        None,
        "",
        "my own voice",
        "[tzurot-clone p=abc]",  # no attempt
        f"[tzurot-clone p={PERSONALITY} a=XYZ]",
        f"[tzurot-clone p={PERSONALITY} a={'0' * 32}] edited after",  # not at the end
        f"[tzurot-clone p=a;b a={'0' * 32}]",
    ],
)
def test_a_voice_without_our_mark_is_not_ours(description: object) -> None:
    assert read_mark(description) is None


def test_personality_ids() -> None:
    assert valid_personality_id(PERSONALITY)
    assert not valid_personality_id("")
    assert not valid_personality_id("a b")
    assert not valid_personality_id("x]" + "a" * 10)
    assert not valid_personality_id("a" * 65)
