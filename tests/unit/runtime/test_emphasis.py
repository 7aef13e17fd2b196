"""Discord's '_' emphasis read in one pass (tzurot.runtime.emphasis), checked against
simple-markdown's own rules run as its parser runs them: which '_'s are markers, and where
a name followed by closing markers ends."""

from __future__ import annotations

import random
import re

import pytest

from tzurot.runtime.emphasis import Emphasis

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
    """`text` without its markers: "sage_bot_" shows "sagebot", one word."""
    markers = {at for start, end, _closing in _markers(text) for at in range(start, end)}
    return "".join(char for at, char in enumerate(text) if at not in markers)


PIECES = ["_", "__", "___", "a", "Sage", " ", "!", "で", "é", "\\", ",", "x_y", "@", "\n"]
"""What random messages are made of: no address, link nor code (`prose` blanks those)."""
RUNS = ["_", "__", "a", " ", "!", "é"]
"""Longer messages of runs of '_' and what may follow them."""


def _closing_begins(text: str) -> dict[int, int]:
    """Where closing markers begin and run to the end of their run of '_', each with where
    the last of the markers they close begins."""
    markers = _markers(text)
    opener = {
        at: markers[index - 1][0]
        for index, (start, end, closes) in enumerate(markers)
        if closes
        for at in range(start, end)
    }
    begins: dict[int, int] = {}
    for at in opener:
        run_end = len(text) - len(text[at:].lstrip("_"))
        if at - 1 not in opener and all(p in opener for p in range(at, run_end)):
            begins[at] = max(opener[p] for p in range(at, run_end))
    return begins


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
        shown, where = emphasis.shown()
        assert shown == _as_discord_shows(text), repr(text)
        assert all(emphasis.read[where[at]] == char for at, char in enumerate(shown))
        begins = _closing_begins(text)
        assert {at for at in range(len(text)) if emphasis.closes_at(at)} == set(begins), repr(text)
        # Which emphasis it closes: opened before a name's '@' (no '_'), or not.
        for at, opened in begins.items():
            for name in (p for p in range(len(text) + 1) if text[p : p + 1] != "_"):
                assert emphasis.closes_at(at, opened_before=name) == (opened < name), repr(text)


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
    """The message without its markers, each character with where it is written."""
    shown, where = Emphasis("_waves at Sage_").shown()
    assert (shown, list(where)) == ("waves at Sage", list(range(1, 14)))
    assert Emphasis("__init__ sage__").shown()[0] == "init sage__"
    assert Emphasis("___Sage___").shown()[0] == "Sage"
    assert Emphasis("__sage___").shown()[0] == "sage_"
    assert Emphasis("_sage___").shown()[0] == "sage__"
    assert Emphasis("dm sage_ on twitter").shown()[0] == "dm sage_ on twitter"


def test_a_marker_inside_a_word_joins_it() -> None:
    """Italics may open after a letter (simple-markdown tries its rule on the rest of the
    message, where its leading \\b always holds): "sage_bot_" is "sage" then italic "bot",
    which Discord shows as one word, not two."""
    shown, where = Emphasis("ask sage_bot_ pls").shown()
    assert shown == "ask sagebot pls"
    assert [where[at] for at in (4, 8, 12)] == [4, 9, 14]
    assert Emphasis("the_sage_ said").shown()[0] == "thesage said"
    assert Emphasis("a__b__c").shown()[0] == "abc"
