"""The token-count memo is shared by the event loop and the lore worker threads: counting
from many threads at once, with the memo full, never fails."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from tzurot.inference.tokens import CountMemo


class WordEncoding:
    def encode(self, text: str, disallowed_special: tuple[str, ...] = ()) -> list[str]:
        return text.split()


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Threads switch every microsecond: a race between two dict operations shows at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_a_full_memo_counts_from_many_threads() -> None:
    memo = CountMemo(WordEncoding(), size=4)  # type: ignore[arg-type]  # only encode is used
    errors: list[BaseException] = []

    def count(thread: int) -> None:
        try:
            for n in range(20_000):
                assert memo.count(f"thread {thread} text {n}") == 4
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=count, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # two threads evicting the same oldest text raised KeyError
    assert len(memo) <= 4
