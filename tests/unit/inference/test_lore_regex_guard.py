"""A regex key whose counted repeats would expand past `MAX_PATTERN_NODES` is refused before
`regex` compiles it (compiling `(((a{100}){100}){100}){100}` alone takes tens of GB), and
matches nothing; ordinary keys with small counts still match.

Anything that could compile a hostile pattern runs in a child process under a memory cap,
so a guard that stops working fails the test instead of the machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest
import structlog

from tzurot.inference.lore import regex_guard
from tzurot.inference.lore.engine import Scan, activate
from tzurot.inference.lore.matching import key_regex
from tzurot.inference.lore.model import Book, Entry, LoreState

BOMBS = [
    "(((a{100}){100}){100}){100}",  # the review's key: 10^8 nodes
    "((a{100}){100}){100}",  # 10^6: 0.5 s and ~300 MB to compile
    "(?:a{1000}){1000}",
    "(?:(?:a{10}){10}){10}" * 20,  # many small products add up
    "((((((((a{4}){4}){4}){4}){4}){4}){4}){4})",
    "(?x)((a{100} # ) a comment cannot hide the nesting\n){100}){100}",
    "(a{0,100}b{100,}){100}",
    "a{1001}",
    "a{0,5000}",
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
    compiled = key_regex(f"/{pattern}/")
    assert compiled is not None
    assert compiled.search(text)


def test_a_refusal_is_logged_once_without_the_pattern() -> None:
    pattern = "(b{99}){999}"
    with structlog.testing.capture_logs() as logs:
        assert key_regex(f"/{pattern}/") is None
        assert key_regex(f"/{pattern}/") is None  # cached: not logged again
    assert [log["event"] for log in logs] == ["lore.regex_key_refused"]
    assert pattern not in repr(logs)
    assert logs[0]["reason"] == f"expands past {regex_guard.MAX_PATTERN_NODES} nodes"


def test_the_cache_is_bounded_by_expanded_size() -> None:
    for n in range(60):  # each about 8,000 nodes: 480,000 in all
        assert regex_guard.compile_key(f"(?:q{n}{{99}}){{80}}") is not None
    assert regex_guard._cache._nodes <= regex_guard.MAX_CACHED_NODES  # the bound itself


CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))  # a regression fails, no OOM
    from tzurot.inference.lore.engine import Scan, activate
    from tzurot.inference.lore.model import Book, Entry, LoreState
    from tzurot.inference.lore.matching import RegexBudget, key_regex
    keys = sys.argv[1:]
    book = Book(id="b", name="b", entries=(
        Entry(uid="0", keys=tuple(f"/{k}/" for k in keys), content="bomb"),
        Entry(uid="1", keys=tuple(keys), content="use_regex", use_regex=True),
        Entry(uid="2", keys=("hello",), content="plain"),
    ))
    out = activate([book], Scan(messages=["hello " + "a" * 200], chat_length=1), LoreState(),
                   budget=1000, count=len, regex_budget=RegexBudget(seconds=60))
    print(",".join(a.entry.uid for a in out.activated))
    print(all(key_regex(f"/{k}/") is None for k in keys))
    """
)


def test_a_book_of_bombs_activates_under_a_memory_cap() -> None:
    done = subprocess.run(  # this interpreter, fixed arguments
        [sys.executable, "-c", CHILD, *BOMBS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["2", "True"]  # before them, the refusals logged


def test_an_ordinary_regex_key_still_fires() -> None:
    book = Book(
        id="b",
        name="b",
        entries=(Entry(uid="0", keys=(r"/\bwyrm(s|lings){1,2}\b/i",), content="Wyrms."),),
    )
    out = activate(
        [book], Scan(messages=["Two WYRMS flew"], chat_length=1), LoreState(), budget=99, count=len
    )
    assert [a.entry.uid for a in out.activated] == ["0"]
