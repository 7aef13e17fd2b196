"""What reading a message's mentions costs grows with its length, not with its square: the
gateway's mentions and group speakers, the bot's gateway-away check, Discord's code pairing.
Not a timing (bench/ times them): the work is counted, as Python bytecodes run plus the
characters the message's slices and `find`s go over, for a message and one four times as
long. Linear work grows about 4 times, quadratic 16."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, SupportsIndex

import pytest

from tzurot.bot.addressing import may_mention
from tzurot.gateway.domain import Personality
from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.speakers import Member, named_in
from tzurot.runtime.mention_starts import code_spans

from .personality_support import personality

NAMES = [personality("sage", "Sage"), personality("luna", "Luna"), personality("s", "S")]
SIZE = 1500
LINEAR = 6
"""The most four times the length may cost, in times the work: 4 is linear, 16 quadratic."""


class _Counted(str):
    """A message counting the characters its slices copy and its `find`s pass over."""

    chars = 0

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        piece = str.__getitem__(self, key)
        self.chars += len(piece)
        return piece

    def find(self, sub: str, start: SupportsIndex | None = None, *args: Any) -> int:
        found = str.find(self, sub, start, *args)
        begin = 0 if start is None else int(start)
        self.chars += (found + len(sub) if found != -1 else len(self)) - begin
        return found


def work(read: Callable[[str], object], text: str) -> int:
    """The bytecodes `read` runs on `text`, plus the characters it copies and searches."""
    message = _Counted(text)
    opcodes = 0

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal opcodes
        frame.f_trace_opcodes = True
        opcodes += event == "opcode"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        read(message)
    finally:
        sys.settrace(previous)
    return opcodes + message.chars


def growth(read: Callable[[str], object], unit: str, size: int = SIZE) -> float:
    """How many times the work grows from `size` characters of `unit`s to four times as many."""
    small, large = ((unit * (n // len(unit) + 1))[:n] for n in (size, 4 * size))
    return work(read, large) / work(read, small)


def test_the_count_tells_quadratic_work() -> None:
    """The measure itself: a scan back to the start at every '@' grows by 16."""

    def scan_back(text: str) -> None:
        for at in range(len(text)):
            if text[at] == "@":
                text[:at].rsplit(None, 1)

    assert growth(scan_back, "/@S") > 12


@pytest.mark.parametrize(
    "unit",
    [
        "/@S",  # no whitespace: one run of URL characters
        "ねえ@Sage/",
        "x.js/@S/",  # hosts refused (no such country code)
        "youtube.com/@S/",  # one long link
        "a@S.b",  # e-mail addresses back to back
        "``@S",
        "\\`@S`",
        "```@S\n",
        "@S ",
        "_@S",  # emphasis closing after every name
        "*@S",
        "__@S__ ",
        "@S_x",  # an underscore carrying each name on
        "@S" + "_" * 40,
        "main.py/@S",  # file names, not hosts
        "a.b.c.d.md/@S",
        "www.x.co@S",
        "```py   \n```@S",
        "```c#\n\n\n",
        "_a_b @S_",  # italics failing and opening again at every run
        "\\__@S_",  # escaped '_'s
        "<:a_b:1>_@S_ ",  # custom emoji, blanked
        "___@S__",
        "@S_x_ ",  # italics a name's own '_' opened
    ],
)
def test_finding_mentions_stays_linear(unit: str) -> None:
    assert growth(lambda text: find_mentions(text, NAMES, 5), unit) < LINEAR


@pytest.mark.parametrize("unit", ["_@S", "*@S", "@S_", "main.py/@S"])
def test_a_long_adversarial_message_stays_linear(unit: str) -> None:
    """16,000 characters of it, for every reader: each '@' is a mention (or a file's name
    before one), read once."""
    names = [*NAMES, personality("s-underscore", "S_")]
    assert growth(lambda text: find_mentions(text, names, 5), unit, 4000) < LINEAR
    assert growth(may_mention, unit, 4000) < LINEAR
    members = [Member("s", ("S",), 0.0), Member("u", ("S_",), 0.0)]
    assert growth(lambda text: named_in(text, members), unit, 4000) < LINEAR


@pytest.mark.parametrize(
    "unit", ["youtube.com/@S", "a@S.b", "`@S`", "@here ", "@ ", "www.x.co@S", "main.py/@S"]
)
def test_the_bots_check_stays_linear(unit: str) -> None:
    """Every '@' read and passed over: in a link, an address, code, a ping, before a space."""
    assert growth(may_mention, unit) < LINEAR


@pytest.mark.parametrize(
    "unit",
    [
        "youtube.com/@sage",
        "ada@sage.org ",
        "`sage` ",
        "sage ",
        "_sage_ ",
        "main.py/sage ",
        "__sage__ ",
        "sage_ ",
        "_a_b sage_ ",
        "sage_bot_ ",  # markers inside words, taken out of what is shown
    ],
)
def test_naming_speakers_stays_linear(unit: str) -> None:
    members = [Member("s", ("Sage", "sage"), 0.0), Member("l", ("Lilith",), 0.0)]
    assert growth(lambda text: named_in(text, members), unit) < LINEAR


@pytest.mark.parametrize(
    "unit",
    [
        "`",
        "```\n",
        "```py\n",
        "`a` ",
        "``a` ",
        "`a`` ",
        "\\`a` ",
        "\\```x",
        "``x\\`` ",
        "```py   \n",
        "```\n\n\n",
        "```" + " " * 30,
    ],
)
def test_many_backticks_stay_linear(unit: str) -> None:
    """Backtick runs that never close, or close at once: each position looked at a few
    times, whatever follows it."""
    assert growth(code_spans, unit) < LINEAR
    runs = " ".join("`" * n for n in range(1, 90)) + " @Sage"
    assert find_mentions(runs, NAMES, 5)[0][1] == "@Sage"


def test_a_run_of_underscores_is_read_once_whatever_the_names_ending_in_it() -> None:
    """Personalities "s_", "s__", ... each end somewhere in one long run of '_' after "@s":
    whether that run closes Discord's emphasis is read once, not once per name. What a
    longer run adds to the work does not grow with the number of names."""
    one = [personality("s1", "s_")]
    many = [personality(f"s{i}", "s" + "_" * i) for i in range(1, 41)]

    def added(names: list[Personality]) -> int:
        def read(text: str) -> object:
            return find_mentions(text, names, 5)

        return work(read, "@s" + "_" * 4000 + "x") - work(read, "@s" + "_" * 50 + "x")

    assert added(many) < 2 * added(one)
