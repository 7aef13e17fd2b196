"""On real Postgres: what `find_personality` keeps of a name that names nothing (review of
99fb9cf).

- M1: a name longer than any personality's is a miss without a statement or a cache entry,
  and misses are kept apart from the hits, so random names never evict a cached personality.
- L1: a miss is kept 1 s at most: a personality another replica creates is found within it.
- L2: UpdatePersonality by a name goes through `_owned`, with its length limit.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.personalities import normalize_alias, same_key
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument

from .alias_rules_support import draft
from .test_names_one_resolver import Statements, people

pytestmark = pytest.mark.component
__all__ = ["people"]  # the fixture, imported to apply here too


async def test_a_name_longer_than_any_personalitys_is_a_miss_never_asked_nor_kept(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    name = "🌙" * 10_000
    key = ("name", same_key(normalize_alias(name)))
    with Statements(engine) as statements:
        assert await store.find_personality(name) is None
        assert await store.find_personality(name, visible_to="") is None
    assert statements.sent == []
    assert store.catalog.get(key) is None
    assert not store.catalog.missed(key)


async def test_random_misses_leave_every_cached_personality_in_place(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    made = [
        await admin.create_personality(alice, draft(f"Kept {i}", slug=f"kept-{i}"))
        for i in range(3)
    ]
    replica = GatewayStore(engine)
    replica.catalog = TtlCache(clock=lambda: 0.0)  # still: nothing expires while 5,000 run
    for p in made:
        assert await replica.find_personality(p.slug) == p
    for _ in range(5_000):
        assert await replica.find_personality(uuid.uuid4().hex) is None
    with Statements(engine) as statements:
        for p in made:
            assert await replica.find_personality(p.slug) == p
            assert await replica.get_personality(p.id) == p
    assert statements.sent == []


async def test_a_personality_another_replica_creates_is_found_within_a_second(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    replica = GatewayStore(engine)
    now = [0.0]  # the replica's clock, moved by hand
    replica.catalog = TtlCache(clock=lambda: now[0])  # the default TTLs
    assert await replica.find_personality("Nova") is None
    made = await admin.create_personality(alice, draft("Nova", slug="nova"))  # another replica
    now[0] = 0.5
    assert await replica.find_personality("nova") is None  # the miss, still kept
    now[0] = 1.0
    found = await replica.find_personality("nova")
    assert found is not None
    assert found.id == made.id


async def test_update_by_a_name_has_the_limits_of_delete(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    mine = await admin.create_personality(alice, draft("Mine", slug="mine"))
    with pytest.raises(InvalidArgument, match="longer than 200"):
        await admin.update_personality(
            alice, replace(mine, id="", slug="x" * 6000, system_prompt="EDITED"), ["system_prompt"]
        )
