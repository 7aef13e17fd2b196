"""On real Postgres, under the C collation: one name means one personality to every command
(review of ca524c1).

- M1: UpdatePersonality by a typed name resolves as GetPersonality and DeletePersonality do
  (`find_personality_for`: the exact slug, the user's own alias, display name, global alias,
  among the personalities the user may use), so /character edit and /personality delete of
  the same text act on the same personality.
- M2: a name that names no personality (one only a personal alias knows) is cached as a miss,
  cleared by writes as hits are: its display-name scan runs once, not at each use (nor twice
  per Generate).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore

from .alias_rules_support import draft
from .conftest import ALICE, command
from .test_alias_rules_visibility import BOB
from .test_name_rules_complete import c_collation

pytestmark = pytest.mark.component
__all__ = ["c_collation"]  # the module's autouse fixture, imported to apply here too


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    return Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))


class Statements:
    """The statements sent to Postgres while listening."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.sent: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(statement)

    def __enter__(self) -> Statements:
        sa.event.listen(self._engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self._engine.sync_engine, "before_cursor_execute", self._record)

    @property
    def name_scans(self) -> int:
        """`find_personality`'s scan by slug, display name and global alias (`_named`)."""
        return sum("by_alias" in statement for statement in self.sent)


# ---- M1 ----


async def test_update_by_a_typed_name_edits_what_get_and_delete_of_that_name_mean(
    admin: Admin, store: GatewayStore, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    """Alice's own alias "luna moon" for her Old, made before her "Luna Moon" (slug luna-2):
    "Luna Moon" means Old to every command."""
    alice, _ = people
    old = await admin.create_personality(alice, draft("Old", slug="old"))
    await admin.add_personal_alias(alice, old.slug, "luna moon")
    luna = await admin.create_personality(alice, draft("Luna Moon", slug="luna-2"))

    assert (await gateway.get_personality("Luna Moon", ALICE)).id == old.id
    edited = await admin.update_personality(
        alice, replace(luna, id="", slug="Luna Moon", system_prompt="EDITED"), ["system_prompt"]
    )
    assert edited.id == old.id
    store.catalog.clear()
    untouched = await store.get_personality(luna.id)
    assert untouched is not None
    assert untouched.system_prompt == "You are Luna Moon."

    await admin.delete_personality(alice, "Luna Moon")
    store.catalog.clear()
    assert await store.get_personality(old.id) is None  # the one edited is the one deleted
    assert await store.get_personality(luna.id) is not None


async def test_update_by_a_typed_name_passes_over_someone_elses_private_personality(
    admin: Admin, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    """Bob's private "Luna" was first; Alice's public "Luna" is what "Luna" means to her."""
    alice, bob = people
    await admin.create_personality(bob, draft("Luna", slug="bob-luna", public=False))
    mine = await admin.create_personality(alice, draft("Luna", slug="alice-luna"))

    assert (await gateway.get_personality("Luna", ALICE)).id == mine.id
    edited = await admin.update_personality(
        alice, replace(mine, id="", slug="Luna", system_prompt="EDITED"), ["system_prompt"]
    )
    assert (edited.id, edited.system_prompt) == (mine.id, "EDITED")


# ---- M2 ----


async def test_a_name_that_names_no_personality_is_looked_up_once_until_a_write(
    admin: Admin, store: GatewayStore, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    assert await store.find_personality("Nobody Here") is None
    with Statements(engine) as statements:
        assert await store.find_personality("nobody  here") is None  # the same key
    assert statements.sent == []

    # A write clears the miss as it clears hits: the name finds what was made of it.
    made = await admin.create_personality(alice, draft("Nobody Here", slug="nobody"))
    found = await store.find_personality("Nobody Here")
    assert found is not None
    assert found.id == made.id


async def test_generate_by_a_personal_alias_scans_the_names_once(
    admin: Admin,
    store: GatewayStore,
    gateway: Gateway,
    engine: AsyncEngine,
    people: tuple[Principal, Principal],
) -> None:
    """Only Alice's own alias is "my witch": the first turn scans the names once (not
    twice), the next one not at all."""
    alice, _ = people
    witch = await admin.create_personality(alice, draft("Morgana", slug="morgana"))
    await admin.add_personal_alias(alice, witch.slug, "my witch")
    store.catalog.clear()  # as another replica, or once the cache's entries expired
    # The catalog's clock held still: a cached miss lives 1 s, and a loaded machine may take
    # longer than that over two turns.
    store.catalog = TtlCache(clock=lambda: 0.0)

    scans = []
    for key in ("witch-1", "witch-2"):
        with Statements(engine) as statements:
            [event async for event in gateway.generate(command(personality="my witch", key=key))]
        scans.append(statements.name_scans)
        async with engine.connect() as conn:
            ran_for = await conn.scalar(
                sa.select(t.jobs.c.personality_id).where(t.jobs.c.idempotency_key == key)
            )
        assert str(ran_for) == witch.id
    assert scans == [1, 0]
