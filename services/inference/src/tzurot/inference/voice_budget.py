"""A weighted, first-come-first-served budget: how inference bounds its voice work's memory.

Each piece of voice work reserves a weight (what it may hold at its largest) from a budget
per process, and waits while the budget cannot take it. Waiting is strictly in arrival order:
a reservation is granted only once every earlier one has been, so a large one (a clone, a
40-minute speech) is never overtaken forever by a stream of small ones; the price is that a
small one arriving behind a waiting large one waits for it too. A reservation may grow
(`Reservation.top_up`) only without waiting, and never ahead of a queued one. No package we
depend on offers a weighted semaphore (anyio's CapacityLimiter counts tokens of one), hence
this class.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class WeightedBudget:
    """`capacity` units; `acquire(weight)` waits (in arrival order) until `weight` of them are
    free and takes them, `release(weight)` gives them back. A weight is taken as at least one
    unit and at most the whole budget, so any reservation can be granted eventually. A caller
    cancelled while waiting takes nothing."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a budget needs at least one unit")
        self.capacity = capacity
        self._free = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def free(self) -> int:
        return self._free

    def would_wait(self, weight: int) -> bool:
        """Whether `acquire(weight)` would wait now (someone is queued, or too little free)."""
        return bool(self._waiters) or self.bounded(weight) > self._free

    def locked(self) -> bool:
        """Nothing at all could be taken now without waiting (asyncio.Semaphore's sense)."""
        return self.would_wait(1)

    def try_acquire(self, weight: int) -> bool:
        """Takes `weight` if that needs no wait (the same rule as `acquire`: never ahead of a
        queued waiter, however much is free); False, and nothing taken, otherwise."""
        weight = self.bounded(weight)
        if self.would_wait(weight):
            return False
        self._free -= weight
        return True

    async def acquire(self, weight: int) -> None:
        weight = self.bounded(weight)
        if self.try_acquire(weight):
            return
        entry = (weight, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except BaseException:
            if entry[1].done() and not entry[1].cancelled():
                self.release(weight)  # granted, but cancelled before it could resume
            else:
                if entry in self._waiters:  # `_grant` may have dropped it already
                    self._waiters.remove(entry)
                self._grant()  # the queue's head may have changed: the next may fit now
            raise

    def release(self, weight: int) -> None:
        self._free = min(self.capacity, self._free + self.bounded(weight))
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            weight, waiter = self._waiters[0]
            if waiter.cancelled():  # its caller is leaving: it takes nothing
                self._waiters.popleft()
                continue
            if weight > self._free:
                return
            self._waiters.popleft()
            self._free -= weight
            waiter.set_result(None)

    def bounded(self, weight: int) -> int:
        """`weight` as taken: at least one unit, at most the whole budget."""
        return min(max(weight, 1), self.capacity)


class Reservation:
    """One piece of work's `weight` of a budget: taken once (`take` waits while the budget
    cannot give it, logged `voice.waiting_for_slot`), grown by `top_up` while held, given back
    whole by `release`, or handed to a conversion's thread, which gives it back when it ends
    (its caller may have left before: a thread cannot be stopped)."""

    def __init__(self, budget: WeightedBudget, weight: int, work: str) -> None:
        self._budget = budget
        self.weight = budget.bounded(weight)  # what `acquire` takes and `release` gives back
        self._work = work
        self._held = False

    async def take(self) -> None:
        if self._held:
            return
        if self._budget.would_wait(self.weight):
            log.info("voice.waiting_for_slot", work=self._work, weight=self.weight)
        await self._budget.acquire(self.weight)  # cancelled while waiting: nothing taken
        self._held = True

    def top_up(self, weight: int) -> bool:
        """`weight` more, held from now on, if the budget gives it without waiting (nor
        overtaking a queued reservation); False, nothing taken, otherwise (or when not held, or
        when it would pass the whole budget)."""
        if not self._held or weight < 1 or self.weight + weight > self._budget.capacity:
            return False
        if not self._budget.try_acquire(weight):
            return False
        self.weight += weight
        return True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._budget.release(self.weight)

    def hand_to(self, running: asyncio.Future[Any]) -> None:
        """The weight is `running`'s from now: given back once it is done, not before."""
        self._held = False
        running.add_done_callback(functools.partial(self._done, self.weight))

    def _done(self, weight: int, running: asyncio.Future[Any]) -> None:
        self._budget.release(weight)
        if not running.cancelled():
            running.exception()  # retrieved: its caller may have left (then nobody reads it)
