"""What a slash command says when the gateway refuses it."""

import pytest

from tzurot.bot.commands.common import failure_text
from tzurot.runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound


def test_a_refusal_is_told_in_its_own_words() -> None:
    assert failure_text(NotFound("no such lorebook")) == "no such lorebook"


@pytest.mark.parametrize("words", ["", "   "])
def test_a_refusal_without_words_still_says_something(words: str) -> None:
    """Discord refuses an empty message (50006): the command would answer nothing."""
    assert failure_text(FailedPrecondition(words)) == "That was refused (failed_precondition)."
    assert failure_text(InvalidArgument("field", words)) == "That was refused (invalid_argument)."


def test_our_own_failures_are_not_explained() -> None:
    assert failure_text(Internal("a stack trace")) == (
        "Something went wrong on our side; try again later."
    )
