"""Discord's formatting read as pairs of markers (tzurot.runtime.formatting), each mark on its
own in one pass, checked against simple-markdown's rules run as its parser runs them: italics
and bold with '*', italics and underline with '_', strikethrough and Discord's spoilers."""

from __future__ import annotations

import random
import re

import pytest

from tzurot.runtime.emphasis import Emphasis, Pair
from tzurot.runtime.formatting import formatting_pairs

# simple-markdown's rules (its em rule's leading \b always holds on the rest of the source),
# and Discord's spoiler rule.
_RULES = {
    "em_": re.compile(r"_((?:__|\\[\s\S]|[^\\_])+?)_\b", re.ASCII),
    "em*": re.compile(
        r"\*(?=\S)((?:\*\*|\\[\s\S]|\s+(?:\\[\s\S]|[^\s\*\\]|\*\*)|[^\s\*\\])+?)\*(?!\*)"
    ),
    "strong": re.compile(r"\*\*((?:\\[\s\S]|[^\\])+?)\*\*(?!\*)"),
    "u": re.compile(r"__((?:\\[\s\S]|[^\\])+?)__(?!_)"),
    "del": re.compile(r"~~(?=\S)((?:\\[\s\S]|~(?!~)|[^\s~\\]|\s(?!~~))+?)~~"),
    "spoiler": re.compile(r"\|\|([\s\S]+?)\|\|"),
}
_QUALITY = {"em_": 0.2, "em*": 0.2, "strong": 0.1, "u": 0.0}
"""The longer match wins among em, strong and u (em on a tie, then strong)."""
_RULES_OF = {"_": ("em_", "u"), "*": ("em*", "strong"), "~": ("del",), "|": ("spoiler",)}
_ESCAPE = re.compile(r"\\[^0-9A-Za-z\s]")
_TEXT = re.compile(r"[\s\S]+?(?=[^0-9A-Za-z\s\u00c0-\uffff]|\n\n| {2,}\n|[A-Za-z0-9_]+:\S|$)")


def _pairs(source: str, mark: str, base: int = 0) -> list[Pair]:
    """The pairs simple-markdown reads in `source` with the rules of `mark` alone: at each
    position the escape rule, else the best of em, strong and u, else strikethrough or a
    spoiler, each parsing its text again, else text."""
    found: list[Pair] = []
    at = 0
    while at < len(source):
        rest = source[at:]
        if escape := _ESCAPE.match(rest):
            at += escape.end()
            continue
        matches = [(rule, m) for rule in _RULES_OF[mark] if (m := _RULES[rule].match(rest))]
        if not matches:
            at += _TEXT.match(rest).end() or 1  # type: ignore[union-attr]
            continue
        rule, best = max(matches, key=lambda item: item[1].end() + _QUALITY.get(item[0], 0))
        size = 1 if rule.startswith("em") else 2
        start, end = base + at, base + at + best.end()
        found.append(Pair((start, start + size), (end - size, end)))
        found += _pairs(best[1], mark, start + size)
        at += best.end()
    return found


def _random_messages(mark: str, seed: int, count: int) -> list[str]:
    """Messages of runs of `mark` (at most three: a longer run of '_' or '*' opens nothing
    here), the other marks, spaces, escapes and words."""
    pieces = [mark, mark * 2, mark * 3, "a", "Sage", " ", "\t", "\n", "!", "é", "で", "\\", "@"]
    pieces += ["_", "*", "~", "|", f"x{mark}y"]
    rng = random.Random(seed)
    messages: list[str] = []
    while len(messages) < count:
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 20)))
        if mark * 4 not in text or mark in "~|":
            messages.append(text)
    return messages


@pytest.mark.parametrize("mark", ["_", "*", "~", "|"])
def test_the_pairs_are_the_ones_simple_markdown_reads(mark: str) -> None:
    """Each mark read on its own, as the rules of that mark alone read it."""
    for text in _random_messages(mark, 271, 6000):
        pairs = [pair for pair in formatting_pairs(text) if text[pair.opener[0]] == mark]
        assert sorted(pairs) == sorted(_pairs(text, mark)), repr(text)


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("*hi*@Sage*bye*", [((0, 1), (3, 4)), ((9, 10), (13, 14))]),  # two italics
        ("**a**@Sage**b**", [((0, 2), (3, 5)), ((10, 12), (13, 15))]),
        ("* @Sage*", []),  # '*' italics open before no space
        ("*a *b* c*", [((3, 4), (5, 6))]),  # nor hold a space before a lone '*'
        ("***a* b**", [((0, 2), (7, 9)), ((2, 3), (4, 5))]),  # bold, italic "a" inside
        ("***a** b*", [((0, 1), (8, 9)), ((1, 3), (4, 6))]),  # italics, bold "a" inside
        ("*** a* b**", [((0, 2), (8, 10))]),  # inside the bold, "* a*" is no italics
        ("~~a~~@Sage~~b~~", [((0, 2), (3, 5)), ((10, 12), (13, 15))]),
        ("~~ @Sage~~", []),  # strikethrough opens before no space
        ("~~@Sage ~~", []),  # nor closes after one
        ("~~~a~~", [((0, 2), (4, 6))]),
        ("||a||@Sage||b||", [((0, 2), (3, 5)), ((10, 12), (13, 15))]),
        ("|| @Sage ||", [((0, 2), (9, 11))]),  # spoilers hold spaces
        ("\\||a||", []),  # an escaped '|' opens none
        ("||a\\||", [((0, 2), (4, 6))]),  # but closes one: the rule reads no escape
        ("`*a*` *b*", [((6, 7), (8, 9))]),  # code holds no markers
    ],
)
def test_what_pairs(text: str, pairs: list[tuple[tuple[int, int], tuple[int, int]]]) -> None:
    assert sorted(formatting_pairs(text)) == sorted(Pair(*pair) for pair in pairs)


def test_the_gateway_reading_of_underscores_is_the_same() -> None:
    """The '_' pairs are those of `Emphasis`, whose closing markers end a mention's name."""
    text = "_waves at @Sage_ and __@Lilith__"
    emphasis = Emphasis(text)
    assert formatting_pairs(text) == emphasis.pairs
    assert [emphasis.closes_at(pair.closer[0]) for pair in emphasis.pairs] == [True, True]
