"""On real Postgres: every way of setting a personality's global aliases (AddAlias,
CreatePersonality, UpdatePersonality's `aliases`, a character card's, a shapes.inc backup's, a
seed file's) applies the same rules in the store, under the alias lock (review s4 H1): an
alias is never another personality's own name (`ALIAS_IS_A_NAME`) nor another's alias
(`ALIAS_TAKEN`), and someone else's private personality is never named, by slug or name, in
the message or its metadata. Its name refuses nothing (that would tell the caller it exists):
for its owner, `@name` still means it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import AlreadyExists
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from .alias_rules_support import draft, refused
from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def hides_the_private_one(error: AlreadyExists) -> None:
    shown = (error.message + json.dumps(error.metadata)).lower()
    assert "another personality" in error.message, error.message
    assert "hidden" not in shown, shown


async def aliases(engine: AsyncEngine) -> dict[str, str]:
    a, p = t.personality_aliases.c, t.personalities.c
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(a.alias, p.slug).join(t.personalities))).all()
    return {row.alias: row.slug for row in rows}


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    """Alice, and Bob with his public Sage and his private "Hidden One" (alias secretalias)."""
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    await admin.create_personality(bob, draft("Sage"))
    await admin.create_personality(bob, draft("Hidden One", aliases=("secretalias",), public=False))
    return alice, bob


async def test_create_personality_checks_its_aliases(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _bob = people
    a_name = await refused(
        admin.create_personality(alice, draft("Evil", aliases=("Sage",))), "ALIAS_IS_A_NAME"
    )
    assert "@Sage is the name of Sage" in a_name.message
    taken = await refused(
        admin.create_personality(alice, draft("Evil", aliases=("SecretAlias",))), "ALIAS_TAKEN"
    )
    hides_the_private_one(taken)
    assert await aliases(engine) == {"secretalias": "hidden-one"}
    assert await admin._store.find_personality("evil") is None


async def test_update_personality_checks_its_aliases(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _bob = people
    evil = await admin.create_personality(alice, draft("Evil", aliases=("wicked",)))
    taken = await refused(
        admin.update_personality(alice, replace(evil, aliases=("secretalias",)), ["aliases"]),
        "ALIAS_TAKEN",
    )
    hides_the_private_one(taken)
    assert taken.metadata == {}
    await refused(
        admin.update_personality(alice, replace(evil, aliases=("sage",)), ["aliases"]),
        "ALIAS_IS_A_NAME",
    )
    assert await aliases(engine) == {"secretalias": "hidden-one", "wicked": "evil"}


async def test_add_alias_names_a_public_holder_and_hides_a_private_one(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(alice, draft("Evil"))
    hides_the_private_one(
        await refused(admin.add_alias(alice, "evil", "secretalias"), "ALIAS_TAKEN")
    )
    await refused(admin.add_alias(alice, "evil", "SAGE"), "ALIAS_IS_A_NAME")
    await admin.add_alias(bob, "sage", "sg")
    public = await refused(admin.add_alias(alice, "evil", "sg"), "ALIAS_TAKEN")
    assert "personality 'sage'" in public.message
    assert public.metadata == {"personality": "sage"}


async def test_card_import_checks_its_aliases(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, _bob = people

    def card(*names: str) -> bytes:
        return json.dumps(card_v3("Evil", extensions={"tzurot": {"aliases": list(names)}})).encode()

    hides_the_private_one(
        await refused(admin.import_card(alice, card("secretalias")), "ALIAS_TAKEN")
    )
    a_name = await refused(admin.import_card(alice, card("Sage")), "ALIAS_IS_A_NAME")
    assert "the name of Sage" in a_name.message
    assert await aliases(engine) == {"secretalias": "hidden-one"}
    imported = await admin.import_card(alice, card("wicked"))
    assert imported.personality.aliases == ("wicked",)


async def test_shapes_and_seed_imports_check_their_aliases(
    admin: Admin, engine: AsyncEngine, people: tuple[Principal, Principal], tmp_path: Path
) -> None:
    backup = read_backup(
        write_backup(
            tmp_path / "evil", config=shape_config(name="Evil", username="evil", aliases=[])
        ).folder
    )
    for alias, reason in (("Sage", "ALIAS_IS_A_NAME"), ("secretalias", "ALIAS_TAKEN")):
        for dry_run in (True, False):  # a dry run refuses what the import would
            await refused(
                admin.import_shapes(
                    OPERATOR,
                    backup.config,
                    aliases=[alias],
                    avatar=b"",
                    avatar_type="",
                    owner="",
                    dry_run=dry_run,
                ),
                reason,
            )
    # The operator may see every personality: the private one is named to them.
    seed = PersonalitySeed(name="Evil", aliases=["secretalias"])
    to_operator = await refused(admin.import_seed(OPERATOR, seed), "ALIAS_TAKEN")
    assert "personality 'hidden-one'" in to_operator.message
    await refused(
        admin.import_seed(OPERATOR, PersonalitySeed(name="Evil", aliases=["sage"])),
        "ALIAS_IS_A_NAME",
    )
    assert await aliases(engine) == {"secretalias": "hidden-one"}


async def test_a_private_personalitys_name_refuses_nothing_and_stays_its_owners(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """Refusing "Hidden One" as Alice's alias would tell her Bob has a personality of that
    name; allowed, it still means Bob's own for Bob (a name before a global alias)."""
    alice, bob = people
    await admin.create_personality(alice, draft("Evil"))
    for alias in ("Hidden One", "hidden-one", "hidden one please"):
        await admin.add_alias(alice, "evil", alias)
    for text in ("@Hidden One hi", "@hidden-one hi", "@hidden one please"):
        (to_bob,) = await admin.resolve_mentions(bob, text, 5)
        assert to_bob[0].slug == "hidden-one", text
        (to_alice,) = await admin.resolve_mentions(alice, text, 5)
        assert to_alice[0].slug == "evil", text


async def test_aliases_from_before_the_rules_are_kept(
    admin: Admin, store: GatewayStore, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    """An alias the personality already has is kept when its aliases are written again (an
    update, a card imported again), as a name it had is (`name_rules.new_names`)."""
    alice, _bob = people
    evil = await admin.create_personality(alice, draft("Evil"))
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.personality_aliases).values(
                alias="sage", display="Sage", personality_id=evil.id
            )
        )
    store.catalog.clear()
    kept = await admin.update_personality(
        alice, replace(evil, aliases=("Sage", "wicked")), ["aliases"]
    )
    assert sorted(kept.aliases) == ["Sage", "wicked"]
    card = card_v3("Evil", extensions={"tzurot": {"aliases": ["Sage"], "slug": "evil"}})
    again = await admin.import_card(alice, json.dumps(card).encode())
    assert again.personality.aliases == ("Sage",)
