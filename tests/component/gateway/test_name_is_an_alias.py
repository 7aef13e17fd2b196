"""On real Postgres: a personality's name (slug or display name) never becomes another
personality's global alias, created, imported (seed, card, shapes.inc backup) or renamed:
`@name` would then mean either one, and the newcomer took the alias over. Someone else's
private personality is not named in the refusal. A name a personality already had (a tie
from before the rule) is kept when it is updated or imported again."""

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
from tzurot.gateway.domain import Actor, Personality
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import AlreadyExists
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from . import alias_rules_support as support
from .alias_rules_support import draft
from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def slugs(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(sa.select(t.personalities.c.slug))).scalars())


async def refused(call: object) -> AlreadyExists:
    return await support.refused(call, "NAME_IS_AN_ALIAS")


async def test_creating_a_personality_named_as_anothers_alias_is_refused(
    admin: Admin, engine: AsyncEngine, lilith: Personality
) -> None:
    by_name = await refused(admin.create_personality(OPERATOR, draft("LIL")))
    assert by_name.message.startswith("@lil is already an alias of Lilith"), by_name.message
    by_slug = await refused(admin.create_personality(OPERATOR, draft("Other", slug="lil")))
    assert "Lilith" in by_slug.message
    by_display = await refused(
        admin.create_personality(OPERATOR, draft("The  Night Queen", slug="queen"))
    )
    assert "@the night queen is already an alias of Lilith" in by_display.message
    assert await slugs(engine) == ["lilith"]
    # Its own alias as its name, and a name no alias has, are fine.
    await admin.create_personality(OPERATOR, draft("Lilac"))
    assert await slugs(engine) == ["lilac", "lilith"]


async def test_a_private_personalitys_alias_is_refused_without_naming_it(
    admin: Admin, gateway: Gateway
) -> None:
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    muse = replace(draft("Muse", aliases=("Calliope",)), public=False)
    await admin.create_personality(alice, muse)
    to_bob = await refused(admin.create_personality(bob, draft("Calliope")))
    assert "another personality" in to_bob.message
    assert "muse" not in to_bob.message.lower()
    to_alice = await refused(admin.create_personality(alice, draft("Calliope")))
    assert "alias of Muse" in to_alice.message


async def test_imports_refuse_a_name_that_is_anothers_alias(
    admin: Admin, engine: AsyncEngine, lilith: Personality, gateway: Gateway, tmp_path: Path
) -> None:
    bob = Principal(await gateway.user(BOB))
    await refused(admin.import_seed(OPERATOR, PersonalitySeed(name="Lil")))
    await refused(admin.import_seed(OPERATOR, PersonalitySeed(name="Queen", slug="lil")))
    card = json.dumps(card_v3("The Night Queen")).encode()
    from_card = await refused(admin.import_card(bob, card))
    assert "alias of Lilith" in from_card.message
    backup = read_backup(
        write_backup(
            tmp_path / "lil", config=shape_config(name="Lil", username="lil", aliases=[])
        ).folder
    )
    for dry_run in (True, False):
        await refused(
            admin.import_shapes(
                OPERATOR,
                backup.config,
                aliases=[],
                avatar=b"",
                avatar_type="",
                owner="",
                dry_run=dry_run,
            )
        )
    assert await slugs(engine) == ["lilith"]
    found = await admin._store.find_personality("lil")
    assert found is not None
    assert found.id == lilith.id


async def test_a_rename_to_anothers_alias_is_refused_a_name_it_had_is_kept(
    admin: Admin, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    nova = await admin.create_personality(OPERATOR, draft("Nova"))
    await refused(
        admin.update_personality(OPERATOR, replace(nova, display_name="Lil"), ["display_name"])
    )
    # A tie from before the rule: Lilith's alias "nova" is Nova's own name.
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.personality_aliases).values(
                alias="nova", display="Nova", personality_id=lilith.id
            )
        )
    store.catalog.clear()
    kept = await admin.update_personality(
        OPERATOR, replace(nova, display_name="NOVA", system_prompt="x"), ["display_name"]
    )
    assert kept.display_name == "NOVA"
    again, created = await admin.import_seed(OPERATOR, PersonalitySeed(name="Nova"))
    assert (again.id, created) == (nova.id, False)
