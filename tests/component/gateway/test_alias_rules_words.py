"""On real Postgres: names and global aliases that would take another personality's @mentions
are refused (review s4 M1). `@Sage!`, `@Sage, hi`, `@Sage's idea` and `@Sage please help`
all mention Sage, so:

- a new name or alias must begin and end with a letter or digit (INVALID_ARGUMENT
  `NAME_NOT_A_WORD`; punctuation and spaces inside stay fine: "Dr. Who");
- a global alias may not be another personality's name or alias followed by more words or
  punctuation (`ALIAS_EXTENDS_A_NAME`; "sagebrush" and "sage-bot" are other words);
- a new name may not be what another's global alias begins with (`NAME_BEGINS_AN_ALIAS`):
  names go before aliases in `find_mentions`, so it would take the alias's mentions.
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
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, CharacterFields, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import AlreadyExists, InvalidArgument
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def draft(name: str, *, aliases: tuple[str, ...] = (), public: bool = True) -> Personality:
    return Personality(
        id="",
        slug="",
        display_name=name,
        aliases=aliases,
        avatar_url="",
        system_prompt=f"You are {name}.",
        character=CharacterFields(),
        default_llm_config_id=None,
        error_message="",
        birthday="",
        owner_user_id=None,
        public=public,
        nsfw=False,
        created_at=NOW,
        updated_at=NOW,
    )


async def not_a_word(call: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        await call  # type: ignore[misc]
    assert caught.value.reason == "NAME_NOT_A_WORD", caught.value
    assert "begin and end with a letter or digit" in caught.value.message
    return caught.value


async def refused(call: object, reason: str) -> AlreadyExists:
    with pytest.raises(AlreadyExists) as caught:
        await call  # type: ignore[misc]
    assert caught.value.reason == reason, caught.value
    return caught.value


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    """Alice with her public Evil; Bob with his public Sage (alias "sg") and his private
    "Hidden One" (alias "secretalias")."""
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    await admin.create_personality(bob, draft("Sage", aliases=("sg",)))
    await admin.create_personality(bob, draft("Hidden One", aliases=("secretalias",), public=False))
    await admin.create_personality(alice, draft("Evil"))
    return alice, bob


async def test_an_alias_not_beginning_and_ending_with_a_word_is_refused(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, _bob = people
    for alias in ("sage!", "sage,", "!sage", "evil 🌿", "evil (2)", "evil_"):
        error = await not_a_word(admin.add_alias(alice, "evil", alias))
        assert error.field == "alias"
    await not_a_word(
        admin.update_personality(
            alice, replace(draft("Evil"), slug="evil", aliases=("wicked!",)), ["aliases"]
        )
    )
    await not_a_word(admin.create_personality(alice, draft("Other", aliases=("?other",))))
    for alias in ("Dr. Who", "D'Artagnan", "सीता", "R2-D2", "évil"):
        await admin.add_alias(alice, "evil", alias)


async def test_a_name_not_beginning_and_ending_with_a_word_is_refused(
    admin: Admin,
    store: GatewayStore,
    engine: AsyncEngine,
    people: tuple[Principal, Principal],
    tmp_path: Path,
) -> None:
    alice, _bob = people
    await not_a_word(admin.create_personality(alice, draft("Wise One!")))
    await not_a_word(admin.import_card(alice, json.dumps(card_v3("Kirby ★")).encode()))
    evil = await admin._store.find_personality("evil")
    assert evil is not None
    await not_a_word(
        admin.update_personality(alice, replace(evil, display_name="Evil…"), ["display_name"])
    )
    backup = read_backup(
        write_backup(
            tmp_path / "x", config=shape_config(name="Mira!", username="mira", aliases=[])
        ).folder
    )
    for dry_run in (True, False):
        await not_a_word(
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
    for name in ("Dr. Who", "D'Artagnan", "सीता"):
        await admin.create_personality(alice, draft(name))
    # A name it had before the rule is kept.
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.personalities)
            .where(t.personalities.c.id == evil.id)
            .values(display_name="Evil!")
        )
    store.catalog.clear()
    kept = await admin.update_personality(
        alice, replace(evil, display_name="EVIL!", system_prompt="x"), ["display_name"]
    )
    assert kept.display_name == "EVIL!"


async def test_an_alias_extending_anothers_name_or_alias_is_refused(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    for alias in ("sage please", "Sage's", "sage, hi", "SAGE  the wise"):
        error = await refused(admin.add_alias(alice, "evil", alias), "ALIAS_EXTENDS_A_NAME")
        assert "begins with @sage, the name of Sage" in error.message, error.message
    by_alias = await refused(admin.add_alias(alice, "evil", "sg please"), "ALIAS_EXTENDS_A_NAME")
    assert "begins with @sg, an alias of Sage" in by_alias.message
    hidden = await refused(
        admin.add_alias(alice, "evil", "secretalias please"), "ALIAS_EXTENDS_A_NAME"
    )
    assert "an alias of another personality" in hidden.message
    assert "hidden" not in hidden.message.lower()
    await refused(
        admin.create_personality(alice, draft("Other", aliases=("sage please",))),
        "ALIAS_EXTENDS_A_NAME",
    )
    # Other words, and its own name extended, are fine.
    for alias in ("sagebrush", "sage-bot", "sage2", "evil please"):
        await admin.add_alias(alice, "evil", alias)
    await admin.add_alias(bob, "sage", "sage the wise")
    for text in ("@Sage please help", "@sage's idea", "hi @Sage, how"):
        (found,) = await admin.resolve_mentions(alice, text, 5)
        assert found[0].slug == "sage", text


async def test_a_name_an_alias_begins_with_is_refused(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.add_alias(bob, "sage", "the oracle")
    error = await refused(admin.create_personality(alice, draft("The")), "NAME_BEGINS_AN_ALIAS")
    assert "@the oracle is an alias of Sage" in error.message, error.message
    await refused(
        admin.import_card(alice, json.dumps(card_v3("Secretalias")).encode()),
        "NAME_IS_AN_ALIAS",
    )
    # Another word, or a name the alias does not begin with, is fine.
    for name in ("Theo", "Oracle"):
        await admin.create_personality(alice, draft(name))
    (found,) = await admin.resolve_mentions(alice, "@the oracle, hi", 5)
    assert found[0].slug == "sage"
