"""What taking mentions and the formatting that held them out of a message costs grows with
its length, not with its square (the work counted as in the gateway's mention costs), for a
message repeating one piece and for one long run followed by many mentions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.gateway.test_mention_cost import LINEAR, SIZE, growth, work
from tzurot.bot.addressing import Addressed, strip_mentions
from tzurot.v1 import common_pb2 as common

SAGE = common.Personality(id="3", slug="sage", display_name="Sage")


def _strip_every_mention(text: str) -> str:
    """`text` without each "@S" in it, as many mentions as the message holds."""
    found, at = [], text.find("@S")
    while at != -1:
        found.append(Addressed(SAGE, "@S", at))
        at = text.find("@S", at + 2)
    return strip_mentions(text, found)


@pytest.mark.parametrize(
    "unit",
    [
        "@S ",
        "_@S_ ",  # each mention's italics taken out
        "**__@S__** ",
        "*a*@S*b*",  # two italics kept apart at each mention
        "||@S||",
        "~~@S~~ ",
        "___@S_",
        "_@S @S_ ",  # mentions taken out together
        "_a @S",  # an italics holding more, never closed
        "*",  # marks and no mention
        "|||||@S",
        "_" * 40 + "@S",
        " " * 40 + "@S",  # spaces read on each side of a mention
    ],
)
def test_taking_mentions_out_stays_linear(unit: str) -> None:
    assert growth(_strip_every_mention, unit) < LINEAR


@pytest.mark.parametrize(
    "message",
    [
        lambda n: "|" * (n // 2) + " @S" * (n // 6),  # spoilers of one '|', then mentions
        lambda n: "*" + " " * (n // 2) + "@S " * (n // 6),  # spaces before mentions taken out
        lambda n: "@S" + " " * (n // 2) + "x" + " @S" * (n // 6),  # spaces after one
    ],
    ids=["bars", "spaces-before", "spaces-after-a-mention"],
)
def test_one_long_run_then_many_mentions_stays_linear(message: Callable[[int], str]) -> None:
    """Mentions only spaces apart are taken out together, each joining the ones before it:
    what lies before them all (a run of marks, spaces) is not read again for each."""
    small, large = (work(_strip_every_mention, message(n)) for n in (SIZE, 4 * SIZE))
    assert large / small < LINEAR
