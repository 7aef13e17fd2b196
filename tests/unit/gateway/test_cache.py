"""TtlCache: entries expire, clear() empties it, and a read begun before a clear is not kept."""

from __future__ import annotations

from tzurot.gateway.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(5.0, clock=clock)
    cache.put("a", "A", cache.generation)
    clock.now += 4.9
    assert cache.get("a") == "A"
    clock.now += 0.2
    assert cache.get("a") is None


def test_clear_empties_it_and_drops_reads_begun_before() -> None:
    cache: TtlCache[str] = TtlCache(5.0)
    cache.put("a", "A", cache.generation)
    before_write = cache.generation  # a slow reader starts here
    cache.clear()  # a write commits
    assert cache.get("a") is None
    cache.put("a", "stale", before_write)
    assert cache.get("a") is None
    cache.put("a", "fresh", cache.generation)
    assert cache.get("a") == "fresh"


def test_zero_ttl_caches_nothing_and_size_is_bounded() -> None:
    off: TtlCache[str] = TtlCache(0.0)
    off.put("a", "A", off.generation)
    assert off.get("a") is None
    small: TtlCache[int] = TtlCache(5.0, max_entries=2)
    for n in range(3):
        small.put(n, n, small.generation)
    assert small.get(2) == 2
    assert len([n for n in range(3) if small.get(n) is not None]) <= 2
