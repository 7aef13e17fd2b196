"""On real Postgres, under the C collation (the production cluster's default): a slug always
means its own personality, whatever alias a user has of its text, and the admin use-cases act
on the personality they found (review 4 of 34522de).

- H1: RemoveAlias checks the owner of the alias's own personality: a personal alias equal to
  that personality's slug does not make someone else's alias removable.
- H2: UpdatePersonality by id, DeletePersonality and GetPersonality by slug land on the
  personality of that slug, not on a personal alias's target (for a superuser too).
- L4: Generate agrees with slash commands: a slug is exact, any other name honours the
  user's own alias.
- L2: personal aliases follow the final-sigma rule (lookup, add, remove).
- L3: global aliases stored before that rule and differing only by a final sigma: each owner removes
  only their own.
- M1: the alias rules count other owners' public names and the alias owner's own, whoever
  asks: a user's private "Oracle" does not refuse the operator's seed alias "oracle".
- L1: a kept name renamed cosmetically ("Sage 🌙" to "Sage 🌟" beside another's Sage) is
  allowed; "Sage!" to "Sage" is not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import PermissionDenied

from .alias_rules_support import draft, refused
from .conftest import ALICE, command
from .test_alias_rules_visibility import BOB, OPERATOR
from .test_name_rules_complete import CAROL, c_collation, mentioned

pytestmark = pytest.mark.component
__all__ = ["c_collation"]  # the module's autouse fixture, imported to apply here too


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    return Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))


async def _aliases(store: GatewayStore, personality: Personality) -> tuple[str, ...]:
    store.catalog.clear()
    found = await store.get_personality(personality.id)
    assert found is not None
    return found.aliases


# ---- H1, H2: a slug means its own personality ----


async def test_a_personal_alias_equal_to_a_slug_does_not_let_its_user_remove_that_ones_aliases(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    mine = await admin.create_personality(alice, draft("Mine", slug="mine"))
    await admin.add_personal_alias(alice, mine.slug, "nova")
    bobs = await admin.create_personality(bob, draft("Nova", slug="nova"))
    await admin.add_alias(bob, bobs.slug, "stella")
    with pytest.raises(PermissionDenied) as caught:
        await admin.remove_alias(alice, "stella")
    assert caught.value.reason == "NOT_OWNER"
    assert await _aliases(store, bobs) == ("stella",)


async def test_an_alias_squatted_while_the_slug_was_private_gives_no_rights_once_public(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    bobs = await admin.create_personality(bob, draft("Nova", slug="nova", public=False))
    mine = await admin.create_personality(alice, draft("Mine", slug="mine"))
    await admin.add_personal_alias(alice, mine.slug, "nova")
    await admin.update_personality(bob, replace(bobs, public=True), ["public"])
    await admin.add_alias(bob, bobs.slug, "stella")
    with pytest.raises(PermissionDenied):
        await admin.remove_alias(alice, "stella")
    assert await _aliases(store, bobs) == ("stella",)


async def test_update_by_id_and_delete_by_slug_act_on_that_personality_not_an_alias_target(
    admin: Admin, store: GatewayStore, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    """Alice's alias "nova" for her Old Nova, made before her new "Nova" (slug `nova`)."""
    alice, _ = people
    old = await admin.create_personality(alice, draft("Old Nova", slug="old-nova"))
    await admin.add_personal_alias(alice, old.slug, "nova")
    new = await admin.create_personality(alice, draft("Nova", slug="nova"))

    edited = await admin.update_personality(
        alice, replace(new, system_prompt="EDITED"), ["system_prompt"]
    )
    assert edited.id == new.id
    store.catalog.clear()
    kept = await store.get_personality(old.id)
    assert kept is not None
    assert kept.system_prompt == "You are Old Nova."
    assert (await gateway.get_personality("nova", ALICE)).id == new.id
    assert (await gateway.get_personality("Nova", ALICE)).id == new.id  # a slug in any case

    await admin.delete_personality(alice, "nova")
    store.catalog.clear()
    assert await store.get_personality(new.id) is None
    assert await store.get_personality(old.id) is not None
    # With no personality of that slug left, the alias means Old Nova again.
    assert (await gateway.get_personality("nova", ALICE)).id == old.id


async def test_a_superuser_deletes_the_personality_of_the_slug_not_their_alias_target(
    admin: Admin, store: GatewayStore, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    carol = Principal(replace(await gateway.user(CAROL), superuser=True))
    bobs = await admin.create_personality(bob, draft("Nova Prime", slug="nova-prime"))
    await admin.add_personal_alias(carol, bobs.slug, "nova")
    spam = await admin.create_personality(alice, draft("Nova", slug="nova"))
    await admin.delete_personality(carol, "nova")
    store.catalog.clear()
    assert await store.get_personality(spam.id) is None
    assert await store.get_personality(bobs.id) is not None


# ---- L4: Generate as slash commands ----


async def _generated_for(
    gateway: Gateway, engine: AsyncEngine, name: str, key: str, *, reads_aliases: bool
) -> str:
    """The personality a Generate of `name` ran for; whether it read the personal aliases
    (a slug does not: the turn's statements stay as they were)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        [event async for event in gateway.generate(command(personality=name, key=key))]
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert any("personal_aliases" in statement for statement in sent) == reads_aliases
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(t.jobs.c.personality_id).where(t.jobs.c.idempotency_key == key)
        )
    return str(found)


async def test_generate_honours_the_users_own_alias_for_a_name_and_takes_a_slug_exactly(
    admin: Admin,
    gateway: Gateway,
    engine: AsyncEngine,
    lilith: Personality,
    people: tuple[Principal, Principal],
) -> None:
    """Alice's alias "luna moon" for Lilith, made before Bob's public "✨Luna Moon✨": she
    talks to Lilith by that name, as GetPersonality gives her, and to Bob's by its slug."""
    alice, bob = people
    await admin.add_personal_alias(alice, lilith.slug, "luna moon")
    luna = await admin.create_personality(bob, draft("✨Luna Moon✨", slug="luna-moon"))
    assert (await gateway.get_personality("luna moon", ALICE)).id == lilith.id
    by_name = await _generated_for(gateway, engine, "luna moon", "m-name", reads_aliases=True)
    assert by_name == lilith.id
    by_slug = await _generated_for(gateway, engine, "luna-moon", "m-slug", reads_aliases=False)
    assert by_slug == luna.id


# ---- L2, L3: the final sigma ----


async def test_personal_aliases_follow_the_final_sigma_rule(
    admin: Admin, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    wise = await admin.create_personality(bob, draft("Wise", slug="wise"))
    other = await admin.create_personality(alice, draft("Other", slug="other"))
    await admin.add_personal_alias(alice, wise.slug, "Σοφοσ")
    assert (await gateway.get_personality("ΣΟΦΟΣ", ALICE)).id == wise.id
    assert (await gateway.get_personality("σοφος", ALICE)).id == wise.id
    await refused(admin.add_personal_alias(alice, other.slug, "σοφος"), "ALIAS_EXISTS")
    assert await mentioned(admin, alice, "@σοφος hi") == [("wise", "@σοφος")]
    await admin.remove_personal_alias(alice, "ΣΟΦΟΣ")
    assert await admin.list_personal_aliases(alice) == []


async def test_legacy_global_aliases_of_one_key_are_each_removed_by_their_own_owner(
    admin: Admin, engine: AsyncEngine, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    """Stored before keys were compared by `same_key` (then exactly): one of each owner."""
    alice, bob = people
    bee = await admin.create_personality(bob, draft("Bee", slug="bee"))
    ay = await admin.create_personality(alice, draft("Ay", slug="ay"))
    a = t.personality_aliases.c
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.personality_aliases),
            [
                {"alias": "σοφος", "display": "σοφος", "personality_id": bee.id},
                {"alias": "σοφοσ", "display": "σοφοσ", "personality_id": ay.id},
            ],
        )
    store.catalog.clear()
    await admin.remove_alias(alice, "σοφοσ")
    async with engine.connect() as conn:
        left = (await conn.execute(sa.select(a.alias, a.personality_id))).all()
    assert [(row.alias, str(row.personality_id)) for row in left] == [("σοφος", bee.id)]
    await admin.remove_alias(bob, "σοφος")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(a.alias))).all() == []


async def test_of_legacy_aliases_of_one_key_each_owner_is_refused_the_others(
    admin: Admin, engine: AsyncEngine, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    bee = await admin.create_personality(bob, draft("Bee", slug="bee"))
    ay = await admin.create_personality(alice, draft("Ay", slug="ay"))
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.personality_aliases),
            [
                {"alias": "σοφος", "display": "σοφος", "personality_id": bee.id},
                {"alias": "σοφοσ", "display": "σοφοσ", "personality_id": ay.id},
            ],
        )
    store.catalog.clear()
    with pytest.raises(PermissionDenied):
        await admin.remove_alias(bob, "σοφοσ")
    assert await _aliases(store, ay) == ("σοφοσ",)


# ---- M1: the alias rules count public names and the alias owner's own ----


async def test_a_private_name_refuses_neither_the_operators_seed_alias_nor_a_superusers(
    admin: Admin, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    await admin.create_personality(alice, draft("Oracle", slug="alices-oracle", public=False))
    seeded, _ = await admin.import_seed(
        OPERATOR, PersonalitySeed(name="Delphi", slug="delphi", aliases=["oracle", "oracle of"])
    )
    assert set(seeded.aliases) == {"oracle", "oracle of"}
    carol = Principal(replace(await gateway.user(CAROL), superuser=True))
    pythia = await admin.create_personality(carol, draft("Pythia", slug="pythia"))
    await admin.add_alias(carol, pythia.slug, "alices-oracle")
    # For Alice her own private name still comes first.
    assert await mentioned(admin, alice, "@oracle hi") == [("alices-oracle", "@oracle")]


async def test_the_alias_owners_own_private_name_still_refuses_their_alias(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    await admin.create_personality(alice, draft("Oracle", slug="alices-oracle", public=False))
    delphi = await admin.create_personality(alice, draft("Delphi", slug="delphi"))
    await refused(admin.add_alias(alice, delphi.slug, "oracle"), "ALIAS_IS_A_NAME")
    await refused(admin.add_alias(alice, delphi.slug, "oracle please"), "ALIAS_EXTENDS_A_NAME")


# ---- L1: a kept name renamed cosmetically ----


async def _kept(engine: AsyncEngine, store: GatewayStore, p: Personality, name: str) -> Personality:
    """`p` renamed `name` as it would have been before the rules, and older."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.personalities)
            .where(t.personalities.c.id == p.id)
            .values(display_name=name, created_at=sa.func.now() - sa.text("interval '1 day'"))
        )
    store.catalog.clear()
    kept = await store.get_personality(p.id)
    assert kept is not None
    return kept


async def test_a_kept_name_renamed_cosmetically_is_allowed_to_the_key_is_not(
    admin: Admin, engine: AsyncEngine, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(bob, draft("Sage", slug="bob-sage"))
    herb = await admin.create_personality(alice, draft("Herb", slug="old-sage"))
    kept = await _kept(engine, store, herb, "Sage 🌙")
    renamed = await admin.update_personality(
        alice, replace(kept, display_name="Sage 🌟"), ["display_name"]
    )
    assert renamed.display_name == "Sage 🌟"
    await refused(
        admin.update_personality(alice, replace(renamed, display_name="Sage"), ["display_name"]),
        "NAME_TAKEN",
    )
    kept = await _kept(engine, store, herb, "Sage!")
    await refused(
        admin.update_personality(alice, replace(kept, display_name="Sage"), ["display_name"]),
        "NAME_TAKEN",
    )


async def test_a_cosmetic_rename_onto_another_owners_name_as_written_is_refused(
    admin: Admin, engine: AsyncEngine, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(bob, draft("Sage", slug="bob-sage"))
    herb = await admin.create_personality(alice, draft("Herb", slug="old-sage"))
    star = await admin.create_personality(bob, draft("Star", slug="star"))
    await _kept(engine, store, star, "Sage 🌟")
    kept = await _kept(engine, store, herb, "Sage 🌙")
    await refused(
        admin.update_personality(alice, replace(kept, display_name="SAGE 🌟"), ["display_name"]),
        "NAME_TAKEN",
    )
