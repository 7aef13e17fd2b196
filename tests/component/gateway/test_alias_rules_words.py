"""On real Postgres: names and global aliases that would take another personality's @mentions
are refused (review s4 M1). `@Sage!`, `@Sage, hi`, `@Sage's idea` and `@Sage please help`
all mention Sage, so:

- a new alias must begin and end with a letter or digit (INVALID_ARGUMENT `NAME_NOT_A_WORD`;
  punctuation and spaces inside stay fine: "Dr. Who"); a name may begin and end with
  anything and is mentioned by its key, its edges trimmed ("Dr. Who?" as "@Dr. Who"), and is
  refused only when nothing is left (`NAME_NOT_MENTIONABLE`, review s5 M2);
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

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.cards import card_v3
from tzurot.testing.shapes_backup import shape_config, write_backup

from .alias_rules_support import draft, refused
from .conftest import ALICE

pytestmark = pytest.mark.component

OPERATOR = Principal(None)
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def not_a_word(call: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        await call  # type: ignore[misc]
    assert caught.value.reason == "NAME_NOT_A_WORD", caught.value
    assert "begin and end with a letter or digit" in caught.value.message
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


ODD_NAMES = ("Sage 🌙", "✨Luna✨", "Sage (beta)", "Mr. T.", "Dr. Who?")
"""Display names taken verbatim, emoji and punctuation at their edges (review s5 M2)."""


async def test_a_name_may_begin_and_end_with_anything_mentioned_by_its_key(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """Only aliases must begin and end with a letter or digit: a name is mentioned by its key,
    its edges trimmed ("@Dr. Who", "@Luna"), and refused only when nothing is left of it."""
    alice, bob = people
    for index, name in enumerate(ODD_NAMES):  # Bob's, as Sage is ("Sage (beta)" extends it)
        created = await admin.create_personality(bob, replace(draft(name), slug=f"odd-{index}"))
        assert created.display_name == name
    text = "@Luna hi, @dr. who? and @Sage (beta) with @Mr. T."
    mentioned = await admin.resolve_mentions(alice, text, 5)
    assert [(p.display_name, said) for p, said, _ in mentioned] == [
        ("✨Luna✨", "@Luna"),
        ("Dr. Who?", "@dr. who?"),  # the name as written, the longer match
        ("Sage (beta)", "@Sage (beta)"),
        ("Mr. T.", "@Mr. T."),
    ]
    ((sage, _, _),) = await admin.resolve_mentions(alice, "@Sage hi", 5)
    assert sage.slug == "sage"  # "Sage 🌙" is mentioned as @Sage too: the oldest goes first
    # The keys are what the alias rules compare too.
    await refused(admin.add_alias(alice, "evil", "luna"), "ALIAS_IS_A_NAME")
    await refused(admin.add_alias(alice, "evil", "dr. who please"), "ALIAS_EXTENDS_A_NAME")
    await refused(
        admin.create_personality(alice, replace(draft("✨Sg✨"), slug="sparkly")),
        "NAME_IS_AN_ALIAS",
    )
    evil = await admin._store.find_personality("evil")
    assert evil is not None
    renamed = await admin.update_personality(
        alice, replace(evil, display_name="Evil…"), ["display_name"]
    )
    assert renamed.display_name == "Evil…"
    with pytest.raises(InvalidArgument) as caught:
        await admin.create_personality(alice, replace(draft("🌙 ✨"), slug="moon"))
    assert caught.value.reason == "NAME_NOT_MENTIONABLE", caught.value
    assert "no letter or digit" in caught.value.message, caught.value.message


async def test_a_card_or_shape_named_with_emoji_or_punctuation_is_imported(
    admin: Admin, gateway: Gateway, tmp_path: Path
) -> None:
    alice = Principal(await gateway.user(ALICE))
    for name in ODD_NAMES:
        imported = await admin.import_card(alice, json.dumps(card_v3(name)).encode())
        assert imported.created
        assert imported.personality.display_name == name
    mentioned = await admin.resolve_mentions(alice, "@luna, @Dr. Who? and @sage (beta)", 5)
    assert [p.display_name for p, _, _ in mentioned] == ["✨Luna✨", "Dr. Who?", "Sage (beta)"]
    backup = read_backup(
        write_backup(
            tmp_path / "x", config=shape_config(name="Mira!", username="mira", aliases=[])
        ).folder
    )
    for dry_run in (True, False):
        await admin.import_shapes(
            OPERATOR,
            backup.config,
            aliases=[],
            avatar=b"",
            avatar_type="",
            owner="",
            dry_run=dry_run,
        )
    ((mira, text, _),) = await admin.resolve_mentions(alice, "@Mira! hello", 5)
    assert (mira.display_name, text) == ("Mira!", "@Mira!")  # the name as written
    ((mira, text, _),) = await admin.resolve_mentions(alice, "@Mira, hello", 5)
    assert (mira.display_name, text) == ("Mira!", "@Mira")  # and by its key


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
