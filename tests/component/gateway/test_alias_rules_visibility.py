"""On real Postgres, under the C collation (the production cluster's default, where
`lower()` leaves Cyrillic and Greek capitals as they are): the name rules read names by their
Python `mention_key`, and those that keep a name from taking another's @mentions apply where
the name reaches others.

- A private personality's name takes nobody's mentions: it may extend another owner's public
  name ("Luna Lovegood" beside Luna). Made public, all of its names are checked by every
  name rule (extending a name, being another's alias), and a conflict refuses it, saying so.
- A public name whose key is another owner's public name's key ("Sage 🌙" beside Sage) is
  refused (`NAME_TAKEN`): two personalities would answer to one @mention.
- The operator's seed personalities (no owner) and the operator's shapes.inc imports (owned
  by the bot owner) are one owner's.
- `find_personality` (a slash command's personality option) finds a display name as written
  first, then by its key ("luna" finds "✨Luna✨").
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from .alias_rules_support import draft, refused
from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def c_collation(engine: AsyncEngine) -> None:
    """Display names compared as the production cluster compares them (no locale: C)."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                'alter table core.personalities alter column display_name type text collate "C"'
            )
        )
        assert await conn.scalar(sa.text("select lower('Мира' collate \"C\")")) == "Мира"


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    """Alice; Bob with his public Luna."""
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    await admin.create_personality(bob, draft("Luna"))
    return alice, bob


async def test_a_private_name_may_extend_a_public_one_until_made_public(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, _bob = people
    lovegood = await admin.create_personality(alice, draft("Luna Lovegood", public=False))
    imported = await admin.import_card(alice, json.dumps(card_v3("Luna's Twin")).encode())
    assert not imported.personality.public
    error = await refused(
        admin.update_personality(alice, replace(lovegood, public=True), ["public"]),
        "NAME_EXTENDS_A_NAME",
    )
    assert error.message.startswith("'Luna Lovegood' cannot be made public: @luna is the name")
    card = card_v3("Luna's Twin", extensions={"tzurot": {"public": True}})
    again = await refused(
        admin.import_card(alice, json.dumps(card).encode()), "NAME_EXTENDS_A_NAME"
    )
    assert "cannot be made public" in again.message
    still = await admin._store.get_personality(lovegood.id)
    assert still is not None
    assert not still.public
    # Renamed while private, it is checked again (as anything made public) when it goes public.
    renamed = await admin.update_personality(
        alice, replace(lovegood, display_name="Lovegood"), ["display_name"]
    )
    made_public = await admin.update_personality(alice, replace(renamed, public=True), ["public"])
    assert made_public.public


async def test_a_name_made_public_is_checked_against_the_aliases_too(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """Bob's private "Hidden One" refused nothing (Alice may not know of it), so Alice's
    alias "hidden one" was allowed; public, "@hidden one" would mean either one."""
    alice, bob = people
    hidden = await admin.create_personality(bob, draft("Hidden One", public=False))
    evil = await admin.create_personality(alice, draft("Evil"))
    await admin.add_alias(alice, evil.slug, "hidden one")
    error = await refused(
        admin.update_personality(bob, replace(hidden, public=True), ["public"]),
        "NAME_IS_AN_ALIAS",
    )
    assert "cannot be made public" in error.message
    await refused(
        admin.import_seed(OPERATOR, PersonalitySeed(name="Hidden One", slug="hidden-one")),
        "NAME_IS_AN_ALIAS",
    )
    still = await admin._store.get_personality(hidden.id)
    assert still is not None
    assert not still.public


async def test_a_public_name_with_anothers_key_is_refused(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    for name in ("Luna 🌙", "✨LUNA✨", "Luna"):
        error = await refused(
            admin.create_personality(alice, draft(name, slug="moon")), "NAME_TAKEN"
        )
        assert "@luna is already the name of Luna" in error.message, error.message
    await refused(admin.create_personality(alice, draft("Moon", slug="luna")), "PERSONALITY_EXISTS")
    evil = await admin.create_personality(alice, draft("Evil"))
    await refused(
        admin.update_personality(alice, replace(evil, display_name="Luna!"), ["display_name"]),
        "NAME_TAKEN",
    )
    # Private, or the same owner's: allowed.
    await admin.create_personality(alice, draft("Luna 🌙", slug="moon", public=False))
    await admin.create_personality(bob, draft("🌙 Luna", slug="bobs-moon"))


async def test_names_in_other_scripts_are_compared_by_their_python_key(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """`lower()` under the C collation keeps "Мира" and "Σοφία" as they are: the rules read
    the names without it."""
    alice, bob = people
    await admin.create_personality(bob, draft("Мира", slug="mira"))
    await admin.create_personality(bob, draft("ΣΟΦΊΑ", slug="sofia"))
    evil = await admin.create_personality(alice, draft("Evil"))
    await refused(admin.add_alias(alice, evil.slug, "мира"), "ALIAS_IS_A_NAME")
    await refused(
        admin.create_personality(alice, draft("МИРА Вторая", slug="m3")), "NAME_EXTENDS_A_NAME"
    )
    await refused(admin.create_personality(alice, draft("мира", slug="m2")), "NAME_TAKEN")
    await refused(admin.add_alias(alice, evil.slug, "σοφία please"), "ALIAS_EXTENDS_A_NAME")
    await refused(admin.add_alias(alice, evil.slug, "Σοφία"), "ALIAS_IS_A_NAME")
    for name, slug in (("мира", "mira"), ("МИРА", "mira"), ("σοφία", "sofia")):
        found = await admin._store.find_personality(name)
        assert found is not None, name
        assert found.slug == slug, name


async def test_find_personality_matches_as_written_then_by_key(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    _alice, bob = people
    moon = await admin.create_personality(bob, draft("Sage 🌙", slug="moon"))  # the older
    sage = await admin.create_personality(bob, draft("Sage", slug="plain"))
    sparkly = await admin.create_personality(bob, draft("✨Nova✨", slug="sparkly"))
    odd = await admin.create_personality(bob, draft("R2-D2 [beta]^\\", slug="odd"))
    store = admin._store
    for name, expected in (
        ("Sage", sage),  # as written, before "Sage 🌙" by its key
        ("sage 🌙", moon),
        ("✨nova✨", sparkly),
        ("Nova", sparkly),  # by its key
        ("moon", moon),
        ("r2-d2 [BETA]^\\", odd),  # what a regular expression reads specially, as written
        ("R2-D2 [beta", odd),
    ):
        found = await store.find_personality(name)
        assert found is not None, name
        assert found.id == expected.id, name
    assert await store.find_personality("sag") is None
    visible = await store.find_personality("nova", visible_to="")
    assert visible is not None
    assert visible.id == sparkly.id


async def test_the_operators_seeds_and_imports_are_one_owners(
    admin: Admin, gateway: Gateway, tmp_path: Path
) -> None:
    """Seed files have no owner; a shapes.inc import without --owner belongs to the bot
    owner. The operator's both: one may extend the other's name."""
    owner = Actor(platform_user_id="100000000000000009", display_name="Owner")
    admin.bot_owner_id = owner.platform_user_id
    admin.count_operator_as_one_owner(admin._store)  # as the gateway's app does
    await admin.import_seed(OPERATOR, PersonalitySeed(name="Oracle"))
    backup = read_backup(
        write_backup(
            tmp_path / "x", config=shape_config(name="Oracle Speaks", username="os", aliases=[])
        ).folder
    )
    for dry_run in (True, False):  # the bot owner is not a user yet at the dry run
        done = await admin.import_shapes(
            OPERATOR,
            backup.config,
            aliases=[],
            avatar=b"",
            avatar_type="",
            owner="",
            dry_run=dry_run,
        )
    assert done.personality is not None
    assert done.personality.owner_user_id == (await gateway.user(owner)).id
    # Anyone else is another owner.
    alice = Principal(await gateway.user(ALICE))
    await refused(admin.create_personality(alice, draft("Oracle Knows")), "NAME_EXTENDS_A_NAME")
    admin._store.operator_platform_id = admin._db.operator_platform_id = ""
    await refused(
        admin.import_seed(OPERATOR, PersonalitySeed(name="Oracle Speaks Again")),
        "NAME_EXTENDS_A_NAME",
    )
