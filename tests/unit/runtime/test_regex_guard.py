"""A regex key whose counted repeats would expand past `MAX_PATTERN_NODES` is refused before
`regex` compiles it (compiling `(((a{100}){100}){100}){100}` alone takes tens of GB); ordinary
keys with small counts compile. `key_pattern` reads a key as inference does, and
`key_refusal` tells the gateway's import which keys inference would refuse.

Inference's use of the guard (a book of bombs activating under a memory cap) is tested in
tests/unit/inference/test_lore_regex_guard.py."""

from __future__ import annotations

import time
import tracemalloc

import pytest
import regex

from tzurot.runtime import regex_guard

BOMBS = [
    "(((a{100}){100}){100}){100}",  # the review's key: 10^8 nodes
    "((a{100}){100}){100}",  # 10^6: 0.5 s and ~300 MB to compile
    "(?:a{1000}){1000}",
    "(?:(?:a{10}){10}){10}" * 20,  # many small products add up
    "((((((((a{4}){4}){4}){4}){4}){4}){4}){4})",
    "(?x)((a{100} # ) a comment cannot hide the nesting\n){100}){100}",
    "(a{0,100}b{100,}){100}",
    "a{20000}",  # a single character's minimum is written out: 5 MB
    "[a-z]{10001,}",
    "(?:ab){0,5000}",  # a group's count is capped
    "(a){1001}",
    "x" * (regex_guard.MAX_PATTERN_CHARS + 1),
]
ORDINARY = {
    r"\d{3}-\d{4}": "call 555-1234",
    r"\b(dragon|wyrm)s?\b": "two wyrms",
    r"(?:ha){2,5}": "hahaha",
    r"[[:alpha:]]{5}": "hello",
    r"(a{100}){50}": "a" * 5000,
    "a(?i)B": "ab",
}
CHEAP = {
    r"foo[\s\S]{0,1500}bar": "foo and then bar",
    r"^.{0,2000}$": "any line",
    r"(?:\w{3,30}\s+){2,400}": "three words here",
    r"\p{Lu}{2,60000}": "AB",
    "a{0,5000}": "a",
    "a{1001}": "a" * 1001,
}
"""Keys the guard once refused over their counts that compile in about a millisecond: a
repeat of one character or class is a loop past its minimum, not copies."""


@pytest.mark.parametrize("pattern", BOMBS)
def test_an_expanding_pattern_is_refused_quickly_without_allocating(pattern: str) -> None:
    tracemalloc.start()
    started = time.process_time()
    try:
        why = regex_guard.refusal(pattern)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert why is not None
    assert pattern not in why
    assert peak < 1024 * 1024  # parsing only: the pattern is never expanded
    assert time.process_time() - started < 1  # coarse: it takes milliseconds


@pytest.mark.parametrize(("pattern", "text"), ORDINARY.items())
def test_an_ordinary_pattern_compiles_and_matches(pattern: str, text: str) -> None:
    assert regex_guard.refusal(pattern) is None
    compiled = regex_guard.compile_key(*regex_guard.key_pattern(f"/{pattern}/") or ("", 0))
    assert compiled is not None
    assert compiled.search(text)


def test_the_cache_is_bounded_by_expanded_size() -> None:
    for n in range(60):  # each about 8,000 nodes: 480,000 in all
        assert regex_guard.compile_key(f"(?:q{n}{{99}}){{80}}") is not None
    assert regex_guard._cache._nodes <= regex_guard.MAX_CACHED_NODES  # the bound itself


@pytest.mark.parametrize(
    ("key", "force", "expected"),
    [
        ("/dragons?/i", False, ("dragons?", regex.IGNORECASE)),
        ("/a.b/ms", False, ("a.b", regex.MULTILINE | regex.DOTALL)),
        ("/x/guy", False, ("x", 0)),  # g, u and y change nothing
        (r"/a\/b/", False, ("a/b", 0)),  # an escaped delimiter
        ("/a/b/", False, None),  # an unescaped one: a text key
        ("/a/b/", True, ("/a/b/", 0)),  # ... or, in a use_regex entry, a pattern whole
        ("dragon", False, None),
        ("dragon", True, ("dragon", 0)),
    ],
)
def test_a_key_is_read_as_inference_compiles_it(
    key: str, force: bool, expected: tuple[str, int] | None
) -> None:
    assert regex_guard.key_pattern(key, force=force) == expected


@pytest.mark.parametrize("pattern", BOMBS)
def test_key_refusal_tells_a_bomb_key(pattern: str) -> None:
    key = "/" + pattern.replace("/", "\\/") + "/i"
    why = regex_guard.key_refusal(key)
    assert why is not None
    assert pattern not in why
    assert regex_guard.key_refusal(pattern, force=True) is not None  # a use_regex entry's


@pytest.mark.parametrize(
    ("key", "force"),
    [
        *((f"/{pattern}/", False) for pattern in ORDINARY),
        ("/(unclosed/", False),  # does not parse: matches nothing, costs nothing
        ("(((a{100}){100}){100}){100}", False),  # a text key: never compiled
        ("/a/b{5000}/", False),  # an unescaped delimiter: a text key too
    ],
)
def test_key_refusal_lets_other_keys_through(key: str, force: bool) -> None:
    assert regex_guard.key_refusal(key, force=force) is None


@pytest.mark.parametrize(("pattern", "text"), CHEAP.items())
def test_a_wide_repeat_of_one_character_is_let_through_and_compiles_cheaply(
    pattern: str, text: str
) -> None:
    assert regex_guard.refusal(pattern) is None
    assert regex_guard.key_refusal(f"/{pattern}/s") is None
    tracemalloc.start()
    started = time.process_time()
    try:
        compiled = regex.compile(pattern, regex.V0 | regex.DOTALL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert compiled.search(text)
    assert peak < 1024 * 1024
    assert time.process_time() - started < 0.5  # coarse: it takes about a millisecond


@pytest.mark.parametrize("pattern", ["a{9000}", "[ab]{3000}", "(?:[a-z]{0,9}x){900}"])
def test_what_the_guard_lets_through_compiles_within_its_node_bound(pattern: str) -> None:
    """The bound inference relies on: an accepted pattern near `MAX_PATTERN_NODES` compiles
    in a few MB (about 300 bytes a node), however its counts are spelled."""
    assert regex_guard.refusal(pattern) is None
    tracemalloc.start()
    try:
        regex.compile(pattern, regex.V0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < regex_guard.MAX_PATTERN_NODES * 500
