"""Which scopes are large: counted together, remembered for the TTL, then counted again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tzurot.memory import scope_size
from tzurot.memory.scope_size import LargeScope, ScopeKey, ScopeSizes

ANN: ScopeKey = ("p", ("ann", ""), "")
BOB: ScopeKey = ("p", ("bob",), "")


class Counts:
    """Scope sizes to answer with, and the calls made (each a list of scopes)."""

    def __init__(self, sizes: dict[ScopeKey, int], table_rows: float = 0.0) -> None:
        self.sizes = sizes
        self.table_rows = table_rows
        self.calls: list[list[ScopeKey]] = []

    async def __call__(self, scopes: Sequence[ScopeKey], rule: LargeScope) -> tuple[list[int], int]:
        """As the statement: counted no further than the size a large scope needs."""
        self.calls.append(list(scopes))
        needed = rule.needed(self.table_rows)
        return [min(self.sizes.get(scope, 0), needed) for scope in scopes], needed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_scope_at_the_limit_is_large_and_one_below_is_not() -> None:
    counts = Counts({ANN: 100, BOB: 99})
    sizes = ScopeSizes(counts, rule=LargeScope(limit=100))
    assert await sizes.large([ANN, BOB]) == {ANN: True, BOB: False}
    assert counts.calls == [[ANN, BOB]]  # one count for both


async def test_an_answer_is_remembered_for_the_ttl_then_counted_again() -> None:
    counts, clock = Counts({ANN: 5}), Clock()
    sizes = ScopeSizes(counts, rule=LargeScope(limit=10), ttl_seconds=60, clock=clock)
    assert await sizes.is_large("p", ["ann", ""]) is False
    counts.sizes[ANN] = 50  # it grew
    clock.now = 59.0
    assert await sizes.is_large("p", ["ann", ""]) is False  # remembered: not counted
    assert await sizes.large([ANN, BOB]) == {ANN: False, BOB: False}
    assert counts.calls == [[ANN], [BOB]]  # only the scope not counted lately
    clock.now = 60.0
    assert await sizes.is_large("p", ["ann", ""]) is True
    assert counts.calls[-1] == [ANN]


async def test_the_oldest_answers_go_first_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scope_size, "MAX_SCOPES", 2)
    counts = Counts({})
    sizes = ScopeSizes(counts, rule=LargeScope(limit=10))
    scopes: list[ScopeKey] = [("p", (f"u{n}",), "") for n in range(3)]
    for scope in scopes:
        await sizes.large([scope])
    await sizes.large(scopes[1:])  # the two newest: remembered
    assert counts.calls == [[scopes[0]], [scopes[1]], [scopes[2]]]
    await sizes.large(scopes[:1])  # the oldest was let go
    assert counts.calls[-1] == [scopes[0]]


async def test_a_users_mode_change_forgets_the_counts_their_fresh_point_bounds() -> None:
    """A search in fresh mode counts from the user's fresh point (its own key); setting
    the user's mode forgets those counts, not the user's others nor other users'."""
    fresh_ann: ScopeKey = ("p", ("ann", ""), "ann")
    fresh_bob: ScopeKey = ("p", ("bob", ""), "bob")
    counts = Counts({ANN: 50, fresh_ann: 50, fresh_bob: 50})
    sizes = ScopeSizes(counts, rule=LargeScope(limit=10))
    assert await sizes.large([ANN, fresh_ann, fresh_bob]) == {
        ANN: True,
        fresh_ann: True,
        fresh_bob: True,
    }
    counts.sizes[fresh_ann] = 3  # Ann starts fresh: three memories since
    sizes.forget("p", "ann")
    assert await sizes.large([ANN, fresh_ann, fresh_bob]) == {
        ANN: True,
        fresh_ann: False,
        fresh_bob: True,
    }
    assert counts.calls[-1] == [fresh_ann]  # only the forgotten one counted again


async def test_a_large_scope_must_also_be_a_share_of_the_table() -> None:
    """Through the index a scope's nearest are found among the whole table's; a scope under
    `share` of it stays exact (or pgvector's walk would give up with the pool short)."""
    counts = Counts({ANN: 50, BOB: 50}, table_rows=4_000)
    rule = LargeScope(limit=10, walk=0, share=0.01)
    assert await ScopeSizes(counts, rule=rule).large([ANN]) == {ANN: True}  # 1.25 %
    counts.table_rows = 6_000  # 0.83 %
    assert await ScopeSizes(counts, rule=rule).large([BOB]) == {BOB: False}
    counts.table_rows, counts.sizes[BOB] = 5_000, 5  # 1 %, but under the limit
    assert await ScopeSizes(counts, rule=rule).large([ANN, BOB]) == {ANN: True, BOB: False}


async def test_a_large_scope_must_be_cheaper_to_walk_than_to_compare() -> None:
    """Walking `pool / share` memories through the index costs `walk / pool` times as much
    a memory as comparing one: a scope is large when count * share reaches `walk`."""
    counts = Counts({ANN: 10_400, BOB: 10_300}, table_rows=150_000)
    rule = LargeScope(limit=10, walk=720, share=0)  # sqrt(720 * 150,000) = 10,392
    assert await ScopeSizes(counts, rule=rule).large([ANN, BOB]) == {ANN: True, BOB: False}


def test_the_size_needed_by_the_table() -> None:
    rule = LargeScope()
    assert rule.needed(-1) == 20_000  # before Postgres's first estimate
    assert rule.needed(150_000) == 20_000  # the limit
    assert rule.needed(10_000_000) == 84_853  # walking cheaper than comparing
    assert rule.needed(100_000_000) == 600_000  # the walk within pgvector's cap
