"""On real Postgres: a personality's name may not take another's @mentions either (review s5
H1 and M1). Among names the longest wins in `find_mentions`, so:

- a new (or renamed, or made public) name that is another personality's name or global alias
  followed by more words or punctuation ("Sage Please", "Sage's" against Sage) is refused
  (ALREADY_EXISTS `NAME_EXTENDS_A_NAME`), except between personalities of one owner; a
  personality the caller may not see is never named, and its name refuses nothing;
- a name another's global alias begins with (`NAME_BEGINS_AN_ALIAS`) never quotes the alias
  of a personality the caller may not see.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor
from tzurot.gateway.service import Gateway
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from .alias_rules_support import draft, refused
from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    """Alice with her public Evil; Bob with his public Sage (alias "sg") and his private
    "Hidden One" (aliases "secretalias" and "luna secret project")."""
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    await admin.create_personality(bob, draft("Sage", aliases=("sg",)))
    await admin.create_personality(
        bob,
        draft("Hidden One", aliases=("secretalias", "luna secret project"), public=False),
    )
    await admin.create_personality(alice, draft("Evil"))
    return alice, bob


async def test_a_name_extending_anothers_name_or_alias_is_refused(
    admin: Admin, people: tuple[Principal, Principal], tmp_path: Path
) -> None:
    alice, _bob = people
    for name in ("Sage Please", "Sage's", "SAGE, the second", "Sage 2.0"):
        error = await refused(admin.create_personality(alice, draft(name)), "NAME_EXTENDS_A_NAME")
        assert "@sage is the name of Sage" in error.message, error.message
    public_card = card_v3("Sage Please", extensions={"tzurot": {"public": True}})
    await refused(admin.import_card(alice, json.dumps(public_card).encode()), "NAME_EXTENDS_A_NAME")
    backup = read_backup(
        write_backup(
            tmp_path / "x", config=shape_config(name="Sage Please", username="sp", aliases=[])
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
            ),
            "NAME_EXTENDS_A_NAME",
        )
    evil = await admin._store.find_personality("evil")
    assert evil is not None
    await refused(
        admin.update_personality(alice, replace(evil, display_name="Sage's"), ["display_name"]),
        "NAME_EXTENDS_A_NAME",
    )
    by_alias = await refused(
        admin.create_personality(alice, draft("Sg Please")), "NAME_EXTENDS_A_NAME"
    )
    assert "@sg is an alias of Sage" in by_alias.message, by_alias.message
    hidden = await refused(
        admin.create_personality(alice, draft("Secretalias Please")), "NAME_EXTENDS_A_NAME"
    )
    assert "an alias of another personality" in hidden.message
    assert "hidden" not in hidden.message.lower()
    for text in ("@Sage please help", "@sage's idea", "@Sage 2.0"):
        (found,) = await admin.resolve_mentions(alice, text, 5)
        assert found[0].slug == "sage", text


async def test_other_words_a_hidden_name_and_one_owners_names_are_fine(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    for name in ("Sagebrush", "Sage-Bot", "Hidden One Please"):  # Hidden One: not Alice's to see
        await admin.create_personality(alice, draft(name))
    mine = await admin.create_personality(bob, draft("Sage Please"))  # Sage is Bob's too
    (found,) = await admin.resolve_mentions(alice, "@Sage please help", 5)
    assert found[0].id == mine.id


async def test_a_name_made_public_is_checked(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """Alice's private "Oracle Speaks" came first; Bob's public Oracle after (a newcomer
    shorter name takes nothing). Made public, Alice's would take "@Oracle speaks" from it."""
    alice, bob = people
    speaks = await admin.create_personality(alice, draft("Oracle Speaks", public=False))
    await admin.create_personality(bob, draft("Oracle"))
    await refused(
        admin.update_personality(alice, replace(speaks, public=True), ["public"]),
        "NAME_EXTENDS_A_NAME",
    )
    still = await admin._store.get_personality(speaks.id)
    assert still is not None
    assert not still.public
    await admin.update_personality(alice, replace(speaks, system_prompt="x"), ["system_prompt"])


async def test_a_hidden_alias_a_name_begins_is_not_quoted(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    for index in range(25):  # other words are not read as what "luna" begins
        await admin.add_alias(bob, "sage", f"luna{index}")
    error = await refused(admin.create_personality(alice, draft("Luna")), "NAME_BEGINS_AN_ALIAS")
    assert "a global alias of another personality begins with @luna" in error.message
    assert "secret" not in error.message, error.message
    assert "project" not in error.message, error.message
    await admin.add_alias(bob, "sage", "the oracle")
    shown = await refused(admin.create_personality(alice, draft("The")), "NAME_BEGINS_AN_ALIAS")
    assert "@the oracle is an alias of Sage" in shown.message, shown.message
