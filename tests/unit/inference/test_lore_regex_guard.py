"""Inference's lorebook keys through the shared guard (`tzurot.runtime.regex_guard`, tested
in tests/unit/runtime/test_regex_guard.py): a key that would expand past `MAX_PATTERN_NODES`
matches nothing, its refusal logged once without the pattern; ordinary keys still match.

Anything that could compile a hostile pattern runs in a child process under a memory cap,
so a guard that stops working fails the test instead of the machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import structlog

from tests.unit.runtime.test_regex_guard import BOMBS, ORDINARY
from tzurot.inference.lore.engine import Scan, activate
from tzurot.inference.lore.matching import key_regex
from tzurot.inference.lore.model import Book, Entry, LoreState
from tzurot.runtime import regex_guard


@pytest.mark.parametrize(("pattern", "text"), ORDINARY.items())
def test_an_ordinary_pattern_compiles_and_matches(pattern: str, text: str) -> None:
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
