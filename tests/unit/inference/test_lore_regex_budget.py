"""A lorebook of slow regex keys: one activation spends at most `REGEX_BUDGET_SECONDS` on
them (then they match nothing, text keys still do, within a budget of their own), regex
searches release the GIL, and
the service runs the activation off the event loop and says so in the report.

Costs are asserted as search counts and thread CPU time, never wall-clock milliseconds."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from tests.unit.inference.test_service import REQUEST, collect, make
from tzurot.inference import service as service_module
from tzurot.inference.domain import ReplyFinished
from tzurot.inference.lore import matching
from tzurot.inference.lore.engine import Scan, activate
from tzurot.inference.lore.matching import (
    LORE_REGEX_BUDGET_SPENT,
    REGEX_BUDGET_SECONDS,
    REGEX_TIMEOUT_SECONDS,
    RegexBudget,
)
from tzurot.inference.lore.model import Book, Entry, LoreInput, LoreResult, LoreState
from tzurot.inference.lore.prompting import run_lore
from tzurot.runtime import regex_guard

TEXT = "a" * 3000 + "!"
"""Catastrophic backtracking for `(x|a+)+$`: no search of it ends before its timeout."""
KEY = "/(x|a+)+$/"


def hostile_book(entries: int = 20, keys: int = 5) -> Book:
    """Slow regex entries, a constant entry (recursion scans them all again) and a text key
    that fires on the message, scanned last (lowest order)."""
    slow = tuple(
        Entry(
            uid=f"slow-{n}",
            keys=tuple(f"/(x_{n}_{k}|a+)+$/" for k in range(keys)),
            content="never",
            order=200,
        )
        for n in range(entries)
    )
    return Book(
        id="book-1",
        name="Hostile",
        entries=(
            *slow,
            Entry(uid="always", constant=True, content="aaaa", order=300),
            Entry(uid="plain", keys=("aaaa",), content="A plain key still works.", order=1),
        ),
        recursive_scanning=True,
    )


def scan(book: Book, budget: RegexBudget | None, text: str = TEXT) -> list[str]:
    outcome = activate(
        [book],
        Scan(messages=[text], chat_length=2),
        LoreState(),
        budget=1000,
        count=lambda s: len(s.split()),
        rng=random.Random(1),
        regex_budget=budget,
    )
    return [a.entry.uid for a in outcome.activated]


def test_a_hostile_book_costs_one_budget_per_activation() -> None:
    budget = RegexBudget()
    cpu = time.thread_time()
    fired = scan(hostile_book(), budget)
    cpu = time.thread_time() - cpu
    # 20 entries x 5 keys, scanned twice (recursion): 200 searches of 50 ms (~10 s of CPU)
    # without the budget; with it, the searches that fit in 200 ms and a little more.
    assert budget.spent
    assert budget.searches <= math.ceil(REGEX_BUDGET_SECONDS / REGEX_TIMEOUT_SECONDS) + 1
    assert budget.skipped >= 150
    assert cpu < 1.5  # ~0.2 s; far below the ~10 s without a budget
    assert budget.spent_on == ("book-1", "slow-0")
    assert fired == ["plain", "always"]  # text keys still match once the budget is spent


def test_once_spent_regex_keys_match_nothing_and_text_keys_still_do() -> None:
    ticks = iter(range(1000))
    budget = RegexBudget(1.0, clock=lambda: float(next(ticks)) * 0.15)  # 0.15 s a search
    fresh = uuid.uuid4().hex  # patterns no other test compiled
    regex_entries = [
        Entry(uid=f"re-{n}", keys=(f"/dragon|{fresh}{n}/i",), content=f"regex {n}", order=100 - n)
        for n in range(10)
    ]
    text_entry = Entry(uid="text", keys=("dragon",), content="text key", order=1)
    book = Book(id="b", name="B", entries=(*regex_entries, text_entry))
    compiled = regex_guard._cache.misses
    fired = scan(book, budget, "A DRAGON!")
    # 1.0 s at 0.15 s a key: seven keys fit (the seventh spends it), the rest match
    # nothing without being run.
    assert budget.searches == 7
    assert (budget.spent, budget.skipped) == (True, 3)
    assert regex_guard._cache.misses - compiled == 7  # the rest not even compiled
    assert sorted(fired) == sorted([*(f"re-{n}" for n in range(7)), "text"])


def test_text_keys_have_a_budget_of_their_own() -> None:
    """Text keys are cheap one by one, not by the hundred thousand: once their own budget is
    spent they match nothing either, and the scan says so (`spent`)."""
    ticks = iter(range(10_000))
    budget = RegexBudget(text_seconds=1.0, clock=lambda: float(next(ticks)) * 0.3)
    entries = [
        Entry(uid=f"t-{n}", keys=("dragon",), content=f"text {n}", order=100 - n) for n in range(8)
    ]
    fired = scan(Book(id="b", name="B", entries=tuple(entries)), budget, "A DRAGON!")
    # 1.0 s at 0.3 s a key: four keys fit (the fourth spends it), four are never searched.
    assert sorted(fired) == [f"t-{n}" for n in range(4)]
    assert (budget.spent, budget.skipped, budget.searches) == (True, 4, 0)


def test_a_hostile_book_of_text_keys_is_cut_at_its_budget() -> None:
    """The review's book, smaller: 300 entries of 100 random words over 50 messages of 400
    words is ~8 s of substring searches holding the GIL without a budget."""
    rng = random.Random(1)

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))

    entries = tuple(
        Entry(uid=str(n), keys=tuple(word() for _ in range(100)), content="x") for n in range(300)
    )
    messages = [" ".join(word() for _ in range(400)) for _ in range(50)]
    budget = RegexBudget()
    cpu = time.thread_time()
    activate(
        [Book(id="b", name="B", entries=entries, scan_depth=50)],
        Scan(messages=messages, chat_length=100),
        LoreState(),
        budget=10**6,
        count=len,
        regex_budget=budget,
    )
    assert budget.spent
    assert budget.skipped > 0
    assert time.thread_time() - cpu < 3.0  # ~1 s: the text budget, not ~8 s


def test_without_a_budget_object_each_activation_gets_a_fresh_one() -> None:
    cpu = time.thread_time()
    for _ in range(2):
        scan(hostile_book(entries=4), None)
    assert time.thread_time() - cpu < 1.5  # 2 x ~0.2 s, not 2 x 2 s


def test_a_regex_search_lets_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lore worker thread must not hold the GIL through a search (`concurrent=True`; the
    regex package's default for str too, made explicit): here one 1 s search, during which
    this thread keeps counting."""
    monkeypatch.setattr(matching, "REGEX_TIMEOUT_SECONDS", 1.0)
    started = threading.Event()
    matching.key_regex(KEY)  # compiled (and cached) here: the worker only searches

    def search() -> None:
        started.set()
        RegexBudget(1.0).regex_found(KEY, TEXT, force=False)

    worker = threading.Thread(target=search)
    worker.start()
    started.wait()
    spins = 0
    while worker.is_alive():
        spins += 1
    worker.join()
    # Holding the GIL (concurrent=False), the worker leaves this loop ~20-40 thousand turns;
    # released, it turns millions of times in that second.
    assert spins > 200_000


def lore_request(book: Book) -> Any:
    return replace(
        REQUEST, content=TEXT, lore=LoreInput(books=(book,), message_count=1, state=LoreState())
    )


async def test_lore_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """While an activation runs, another coroutine makes progress (it is the one that lets
    the activation finish: on the event loop, the activation would wait for it in vain)."""
    started, progressed = threading.Event(), threading.Event()
    loop_threads: list[bool] = []

    def slow_run_lore(*args: Any, **kwargs: Any) -> LoreResult:
        loop_threads.append(threading.current_thread() is threading.main_thread())
        started.set()
        assert progressed.wait(timeout=5), "the event loop was blocked by the activation"
        return run_lore(*args, **kwargs)

    async def other_user() -> None:
        await asyncio.to_thread(started.wait, 5)
        progressed.set()

    monkeypatch.setattr(service_module, "run_lore", slow_run_lore)
    inference, _, _ = make()
    book = Book(id="b", name="B", entries=(Entry(uid="e", keys=("aaa",), content="Lore."),))
    events, _ = await asyncio.gather(
        collect(inference.generate_reply(lore_request(book))), other_user()
    )
    assert loop_threads == [False]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert [a.entry.uid for a in finished.report.lore] == ["e"]
    assert LORE_REGEX_BUDGET_SPENT not in finished.report.degraded


async def test_a_spent_budget_is_logged_once_by_ids_and_reported() -> None:
    def spent() -> float:
        value = REGISTRY.get_sample_value(
            "tzurot_degraded_answers_total", {"reason": LORE_REGEX_BUDGET_SPENT}
        )
        return value or 0.0

    before = spent()
    inference, _, _ = make()
    with structlog.testing.capture_logs() as logs:
        events = await collect(inference.generate_reply(lore_request(hostile_book())))
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.report.degraded == (LORE_REGEX_BUDGET_SPENT,)
    assert [a.entry.uid for a in finished.report.lore] == ["plain", "always"]
    assert spent() - before == 1
    [record] = [e for e in logs if e["event"] == "lore.regex_budget_spent"]
    assert (record["log_level"], record["book_id"], record["entry_uid"]) == (
        "warning",
        "book-1",
        "slow-0",
    )
    assert record["book_ids"] == ["book-1"]
    assert "a+" not in repr(record)  # no keys
    assert "aaaa" not in repr(record)  # no messages
