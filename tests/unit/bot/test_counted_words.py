"""Counts read right wherever the bot says one: a rate limit of about a second says "1
second" (it said "1 seconds"), and the plural helper separates thousands with whatever
separator it is given (it took "," only, and ignored any other)."""

from __future__ import annotations

import pytest

from tzurot.bot.commands.words import plural
from tzurot.bot.errors import error_reply
from tzurot.runtime.errors import ResourceExhausted
from tzurot.v1 import common_pb2 as common

LILITH = common.Personality(display_name="Lilith")


@pytest.mark.parametrize(
    ("wait", "said"), [(0.2, "1 second"), (1.0, "1 second"), (1.01, "2 seconds")]
)
def test_a_rate_limit_says_one_second_in_the_singular(wait: float, said: str) -> None:
    err = ResourceExhausted("slow down", retry_after_seconds=wait, reason="PROVIDER_RATE_LIMITED")
    assert error_reply(LILITH, err).endswith(f"-# Rate limited: try again in {said}.")


@pytest.mark.parametrize(
    ("sep", "said"),
    [("", "1200000 characters"), (",", "1,200,000 characters"), (" ", "1 200 000 characters")],
)
def test_any_thousands_separator(sep: str, said: str) -> None:
    assert plural(1_200_000, "character", sep=sep) == said


def test_a_separator_never_makes_one_plural_nor_touches_small_counts() -> None:
    assert plural(1, "character", sep=".") == "1 character"
    assert plural(999, "character", sep=".") == "999 characters"
    assert plural(-1_000, "character", sep=".") == "-1.000 characters"
