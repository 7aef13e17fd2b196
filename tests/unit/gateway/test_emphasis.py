"""Discord's '_' emphasis read in one pass (tzurot.gateway.emphasis), checked against
simple-markdown's own rules run as its parser runs them: which '_'s are markers, and where
a name followed by closing markers ends."""

from __future__ import annotations

import random
import re

import pytest

from tzurot.gateway.emphasis import Emphasis

# simple-markdown's rules (its em rule's leading \b always holds on the rest of the source).
_EM = re.compile(r"_((?:__|\\[\s\S]|[^\\_])+?)_\b", re.ASCII)
_U = re.compile(r"__((?:\\[\s\S]|[^\\])+?)__(?!_)")
_ESCAPE = re.compile(r"\\[^0-9A-Za-z\s]")
_TEXT = re.compile(r"[\s\S]+?(?=[^0-9A-Za-z\s\u00c0-\uffff]|\n\n| {2,}\n|[A-Za-z0-9_]+:\S|$)")


def _markers(source: str, base: int = 0) -> list[tuple[int, int, bool]]:
    """The '_' markers simple-markdown reads in `source`: (start, end, closing), as its
    parser does: at each position the escape rule, else the longer of em (winning ties) and
    u, each parsing its text again, else text."""
    found: list[tuple[int, int, bool]] = []
    at = 0
    while at < len(source):
        rest = source[at:]
        if escape := _ESCAPE.match(rest):
            at += escape.end()
            continue
        em, u = _EM.match(rest), _U.match(rest)
        best = em if em and (not u or em.end() + 0.2 > u.end()) else u
        if best is None:
            at += _TEXT.match(rest).end() or 1  # type: ignore[union-attr]
            continue
        size = 1 if best is em else 2
        start, end = base + at, base + at + best.end()
        found += [(start, start + size, False), (end - size, end, True)]
        found += _markers(best[1], start + size)
        at += best.end()
    return found


def _as_discord_shows(text: str) -> str:
    blanked = list(text)
    for start, end, _closing in _markers(text):
        blanked[start:end] = " " * (end - start)
    return "".join(blanked)


PIECES = ["_", "__", "___", "a", "Sage", " ", "!", "で", "é", "\\", ",", "x_y", "@", "\n"]
"""What random messages are made of: no address, link nor code (`prose` blanks those)."""
RUNS = ["_", "__", "a", " ", "!", "é"]
"""Longer messages of runs of '_' and what may follow them."""


def _closing_begins(text: str) -> set[int]:
    """Where closing markers begin and run to the end of their run of '_'."""
    closing = {at for start, end, closes in _markers(text) if closes for at in range(start, end)}
    return {
        at
        for at in closing
        if at - 1 not in closing
        and all(p in closing for p in range(at, len(text) - len(text[at:].lstrip("_"))))
    }


@pytest.mark.parametrize(("pieces", "longest"), [(PIECES, 10), (RUNS, 16)])
def test_the_markers_are_the_ones_simple_markdown_reads(pieces: list[str], longest: int) -> None:
    """On random messages whose runs of '_' are at most three long (a longer run opens
    nothing here: the module docstring)."""
    rng = random.Random(271)
    checked = 0
    while checked < 4000:
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, longest)))
        if "____" in text:
            continue
        checked += 1
        emphasis = Emphasis(text)
        assert emphasis.shown() == _as_discord_shows(text), repr(text)
        begins = _closing_begins(text)
        assert {at for at in range(len(text)) if emphasis.closes_at(at)} == begins, repr(text)


@pytest.mark.parametrize(
    ("text", "closes"),
    [
        ("_hi @Sage_", True),
        ("_hi <:a:1> @Sage_", True),
        ("<:pepe_laugh:1> @Sage_ lol", False),  # a custom emoji's name holds no marker
        ("</sage_chat:1> @Sage_ lol", False),  # nor a command's
        ("`_x` @Sage_", False),  # nor code
        ("https://x.com/a_b @Sage_", False),  # nor a link
        ("first_last@example.com @Sage_", False),  # nor an e-mail address
        ("\\_hi @Sage_", False),  # an escaped '_' is text
        ("\\\\_hi @Sage_", True),  # an escaped backslash, then a marker
        ("____ @Sage_", False),  # a long run opens nothing
        ("_hi @Sage_https://x.com", False),  # a letter follows, as written
    ],
)
def test_what_holds_no_markers(text: str, closes: bool) -> None:
    assert Emphasis(text).closes_at(text.rindex("_")) == closes


def test_what_discord_shows() -> None:
    assert Emphasis("_waves at Sage_").shown() == " waves at Sage "
    assert Emphasis("__init__ sage__").shown() == "  init   sage__"
    assert Emphasis("___Sage___").shown() == "   Sage   "
    assert Emphasis("__sage___").shown() == "  sage_  "
    assert Emphasis("_sage___").shown() == " sage__ "
    assert Emphasis("dm sage_ on twitter").shown() == "dm sage_ on twitter"
