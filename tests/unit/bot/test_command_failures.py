"""What a slash command says when the gateway refuses it."""

import pytest

from tzurot.bot.commands.common import UNREACHABLE, failure_text
from tzurot.runtime.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)


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


@pytest.mark.parametrize(
    "err",
    [
        Unavailable("inference cannot say which providers it has right now; try again in a minute"),
        Unavailable(
            "the gateway is restarting; try again in a moment", reason="SERVICE_RESTARTING"
        ),
        Unavailable("failed to connect to all addresses; ipv4:10.0.0.7:15052"),
    ],
    ids=["inference-away", "gateway-restarting", "transport"],
)
def test_a_service_briefly_away_says_to_try_again_in_a_minute(err: Unavailable) -> None:
    """UNAVAILABLE read "Something went wrong on our side" (as an internal failure), though
    the same command works once the service is back; its own words are not quoted (a
    transport failure's would name an address)."""
    assert failure_text(err) == UNREACHABLE
    assert UNREACHABLE == "A service is briefly unreachable; try again in a minute."
