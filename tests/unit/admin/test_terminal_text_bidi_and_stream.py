"""terminal_text (shared by `tzurot` and `tzurot admin`): a name, footer or error line keeps
no bidirectional control (one would reorder the line the CLI composes around it); an answer's
own text keeps them. An answer's stream is cleaned in time linear in its length however a
model cuts it, and a sequence cut anywhere between chunks is removed as a whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tzurot.admin import terminal_text
from tzurot.admin.terminal_text import MAX_HELD_CHARS, StreamFilter, one_line, printable

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_one_line_removes_every_bidirectional_control() -> None:
    assert one_line(f"Lilith{BIDI}") == "Lilith"
    # A name that would reverse what follows it on the line (`Name> answer`):
    assert one_line("Sage\u202e> gnirts yltsoh") == "Sage> gnirts yltsoh"
    shalom = "\u05e9\u05dc\u05d5\u05dd"
    assert one_line(f"\u2067{shalom}\u2069 Luna \u200f") == f"{shalom} Luna "


def test_an_answer_keeps_its_direction_marks() -> None:
    answer = "\u05e9\u05dc\u05d5\u05dd \u2066Tzurot\u2069!\u200f\nsecond line"
    assert printable(answer) == answer


SEQUENCES = [
    "\x1b[38;5;196m",
    "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "\x1b]52;c;SGVsbG8=\x07",
    "\x1bP+q\x1b\\",
    "\x9b2J",
    "\x9d0;t\x9c",
    "\x1b(B",
    "\x1bc",
    "\x1b[?1049h",
    "\x1b\x1b[31m",
    "\x1b]0;ti\ntle\x07",
    "a\rb",
    "\x1b[",
    "\x1b",
    "\x9b",
    "\x1b[1;",
    "\x1b]0;x\x1b",
    "\x90q\x9c",
    "\x1b %G",
    "\x9d\x9b1\x9d;x\x1b",
]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_a_sequence_cut_anywhere_in_three_is_removed_as_a_whole(sequence: str) -> None:
    whole = f"hi {sequence} yo"
    for i in range(len(whole) + 1):
        for j in range(i, len(whole) + 1):
            text = StreamFilter()
            shown = [text.feed(whole[:i]), text.feed(whole[i:j]), text.feed(whole[j:])]
            assert "".join(shown) + text.finish() == printable(whole), (i, j)


@dataclass
class Counting:
    """A compiled pattern that counts the characters each match or search may look at."""

    pattern: re.Pattern[str]
    work: list[int]

    def fullmatch(self, string: str, pos: int = 0) -> re.Match[str] | None:
        self.work[0] += len(string) - pos
        return self.pattern.fullmatch(string, pos)

    def finditer(self, string: str, pos: int = 0) -> Iterator[re.Match[str]]:
        self.work[0] += len(string) - pos
        return self.pattern.finditer(string, pos)


def hostile_chunks() -> Iterator[str]:
    """About 1 MB of unfinished sequences, cut the ways that made holding quadratic: a run of
    control-string starts ended by a BEL (each start matched to the end before), one control
    string fed a few characters at a time (the held text matched again at every chunk), and
    CSI parameters that never end."""
    for _ in range(140):
        yield "\x9d" * 4000 + "\x07x"
    yield "\x1b]52;c;"
    for _ in range(24_000):
        yield "cm0gLXJmIH4="
    for _ in range(8_000):
        yield "\x9d" * 16
    yield "\x1b["
    for _ in range(8_000):
        yield "1;2;3;4;"
    yield "\x07"


def test_a_hostile_stream_is_cleaned_in_linear_work(monkeypatch: Any) -> None:
    work = [0]
    for name in ("_UNFINISHED", "_STARTS"):
        monkeypatch.setattr(terminal_text, name, Counting(getattr(terminal_text, name), work))
    text = StreamFilter()
    fed = shown = 0
    for chunk in hostile_chunks():
        fed += len(chunk)
        out = text.feed(chunk)
        assert not CONTROL.search(out)
        shown += len(out)
    out = text.finish()
    assert fed > 1_000_000
    assert work[0] <= 2 * fed  # held text is never matched again from its start
    assert not CONTROL.search(out)
    assert shown + len(out) < fed  # the held starts were removed, not printed


def test_what_is_held_stays_bounded() -> None:
    text = StreamFilter()
    assert text.feed("\x1b]52;c;") == ""
    printed = "".join(text.feed("A" * 7) for _ in range(2 * MAX_HELD_CHARS // 7))
    assert printed  # given up once longer than MAX_HELD_CHARS: printed, cleaned
    assert not CONTROL.search(printed + text.finish())
