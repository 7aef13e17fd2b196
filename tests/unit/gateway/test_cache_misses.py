"""The catalog's misses (review of 99fb9cf, M1 and L1): kept apart from its entries, at most
`max_misses` of them (the oldest dropped first), for 1 s at most, cleared with the entries;
and the longest name `find_personality` asks about covers every name a personality has."""

from __future__ import annotations

import sys

from tzurot.gateway.admin.base import MAX_NAME
from tzurot.gateway.cache import MISS_TTL_SECONDS, TtlCache
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.shapes.mapping import MAX_ALIAS_CHARS
from tzurot.gateway.store.personalities import LONGEST_KEY, LONGEST_NAME


def test_misses_never_evict_entries() -> None:
    cache: TtlCache[str] = TtlCache(5.0, max_entries=16, clock=lambda: 0.0)
    for i in range(16):
        cache.put(("hit", i), f"v{i}", cache.generation)
    for i in range(5_000):
        cache.put_miss(("miss", i), cache.generation)
    assert all(cache.get(("hit", i)) == f"v{i}" for i in range(16))


def test_misses_are_bounded_oldest_first_and_cleared_with_the_entries() -> None:
    cache: TtlCache[str] = TtlCache(5.0, max_misses=3, clock=lambda: 0.0)
    for key in "abcd":
        cache.put_miss(key, cache.generation)
    assert [cache.missed(key) for key in "abcd"] == [False, True, True, True]
    stale = cache.generation
    cache.clear()
    assert not any(cache.missed(key) for key in "abcd")
    cache.put_miss("e", stale)  # read before the clear: not kept
    assert not cache.missed("e")


def test_a_miss_lives_one_second_at_most() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(clock=lambda: now[0])
    cache.put_miss("k", cache.generation)
    now[0] = 0.99
    assert cache.missed("k")
    now[0] = MISS_TTL_SECONDS
    assert not cache.missed("k")
    off: TtlCache[str] = TtlCache(0.0)
    off.put_miss("k", off.generation)
    assert not off.missed("k")


def test_the_longest_name_covers_every_name_a_personality_can_have() -> None:
    seed_name = PersonalitySeed.model_fields["name"].metadata
    longest_seed = max(m.max_length for m in seed_name if hasattr(m, "max_length"))
    assert max(MAX_NAME, longest_seed, MAX_ALIAS_CHARS, 80, 63) <= LONGEST_NAME
    # lowering lengthens a character to two at most
    widest = max(len(chr(c).lower()) for c in range(sys.maxunicode + 1))
    assert widest * LONGEST_NAME <= LONGEST_KEY
