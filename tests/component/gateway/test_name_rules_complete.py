"""On real Postgres, under the C collation (the production cluster's default): the name rules
give the same answer whatever the data around them and whoever asks (review 3 of 1d7ae4c).

- An alias a new name begins as a word refuses it however many aliases go on with the word
  and sort before it (M1).
- A name kept from before the rules ("Sage!" beside another owner's older-ruled "Sage") is
  new again when renamed to another written form with the same key: "Sage" would rank as
  written above the other's key (M2).
- Only other owners' public names refuse a name, whoever asks: a private name beside it
  takes nobody's mentions, so it does not refuse the operator's or a superuser's (M3).
- A personality really named "another personality" is protected as any other (L1).
- The Greek final sigma: "Σοφοσ" and "ΣΟΦΟΣ" are one name (L2).
- A slug is compared as written, as @mentions match it: "sage-" is not "@sage" (L3).
- `key_pattern` finds tricky names with Postgres' `~` under the C collation, not only with
  Python's `re` (L6).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor
from tzurot.gateway.personalities import PersonalitySeed, mention_key, normalize_alias
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store.name_lookups import key_pattern

from .alias_rules_support import draft, refused
from .conftest import ALICE
from .test_alias_rules_visibility import BOB, OPERATOR

pytestmark = pytest.mark.component

CAROL = Actor(platform_user_id="100000000000000003", display_name="Carol")


@pytest.fixture(autouse=True)
async def c_collation(engine: AsyncEngine) -> None:
    """Names and aliases compared as the production cluster compares them (no locale: C)."""
    async with engine.begin() as conn:
        for table, column in (("personalities", "display_name"), ("personality_aliases", "alias")):
            await conn.execute(
                sa.text(f'alter table core.{table} alter column {column} type text collate "C"')
            )


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    return Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))


async def mentioned(admin: Admin, who: Principal, text: str) -> list[tuple[str, str]]:
    return [(p.slug, m) for p, m, _ in await admin.resolve_mentions(who, text, 5)]


async def test_an_alias_begun_as_a_word_refuses_past_any_number_of_aliases(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    """'ア' sorts before '・' (U+30FB) and carries on the word: 25 such aliases of Alice's
    used to fill the 20 read, and Bob's "アリス・マーガトロイド" was never looked at."""
    alice, bob = people
    victim = await admin.create_personality(bob, draft("Margatroid", slug="margatroid"))
    await admin.add_alias(bob, victim.slug, "アリス・マーガトロイド")
    filler = await admin.create_personality(alice, draft("Filler", slug="filler", public=False))
    for length in range(25):
        await admin.add_alias(alice, filler.slug, "アリスア" + "ア" * length)
    await refused(
        admin.create_personality(alice, draft("アリス", slug="alisu")), "NAME_BEGINS_AN_ALIAS"
    )
    assert await mentioned(admin, bob, "@アリス・マーガトロイド hi") == [
        ("margatroid", "@アリス・マーガトロイド")
    ]


async def test_a_name_kept_from_before_the_rules_is_new_in_another_written_form(
    admin: Admin, store: GatewayStore, engine: AsyncEngine, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(bob, draft("Sage", slug="bob-sage"))
    old = await admin.create_personality(alice, draft("Herb", slug="old-sage"))
    async with engine.begin() as conn:  # made before NAME_TAKEN existed, and older
        await conn.execute(
            sa.update(t.personalities)
            .where(t.personalities.c.id == old.id)
            .values(display_name="Sage!", created_at=sa.func.now() - sa.text("interval '1 day'"))
        )
    store.catalog.clear()
    assert await mentioned(admin, bob, "@Sage hi") == [("bob-sage", "@Sage")]
    kept_since = await store.get_personality(old.id)
    assert kept_since is not None
    await refused(
        admin.update_personality(alice, replace(kept_since, display_name="Sage"), ["display_name"]),
        "NAME_TAKEN",
    )
    assert await mentioned(admin, bob, "@Sage hi") == [("bob-sage", "@Sage")]
    # The name as it was, in another case, is still its own.
    kept = await admin.update_personality(
        alice, replace(kept_since, display_name="SAGE!"), ["display_name"]
    )
    assert kept.display_name == "SAGE!"


async def test_a_private_name_refuses_no_one_whoever_asks(
    admin: Admin, gateway: Gateway, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    await admin.create_personality(alice, draft("Oracle", slug="alices-oracle", public=False))
    await admin.create_personality(alice, draft("Sybil", slug="sybil", public=False))
    seeded, created = await admin.import_seed(
        OPERATOR, PersonalitySeed(name="Oracle", slug="the-oracle")
    )
    assert (seeded.display_name, created) == ("Oracle", True)
    carol = Principal(replace(await gateway.user(CAROL), superuser=True))
    extended = await admin.create_personality(carol, draft("Sybil Prime", slug="sybil-prime"))
    assert extended.public
    await admin.create_personality(carol, draft("Sybil", slug="carols-sybil"))
    # A public one still refuses: the superuser is refused as anyone is.
    await refused(admin.create_personality(carol, draft("Oracle!", slug="o2")), "NAME_TAKEN")


async def test_a_personality_named_another_personality_is_protected(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    held = await admin.create_personality(bob, draft("another personality", slug="ap"))
    await refused(
        admin.create_personality(alice, draft("Another Personality", slug="ap2")), "NAME_TAKEN"
    )
    await refused(
        admin.create_personality(alice, draft("Another Personality please", slug="ap3")),
        "NAME_EXTENDS_A_NAME",
    )
    mine = await admin.create_personality(alice, draft("Mine", slug="mine"))
    await refused(
        admin.add_alias(alice, mine.slug, "another personality please"), "ALIAS_EXTENDS_A_NAME"
    )
    assert await mentioned(admin, bob, "@another personality please") == [
        (held.slug, "@another personality")
    ]


async def test_the_final_sigma_is_a_sigma_in_a_name(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(bob, draft("ΣΟΦΟΣ", slug="sofos"))
    await refused(admin.create_personality(alice, draft("Σοφοσ", slug="sofos2")), "NAME_TAKEN")
    mine = await admin.create_personality(alice, draft("Mine", slug="mine"))
    await refused(admin.add_alias(alice, mine.slug, "σοφοσ"), "ALIAS_IS_A_NAME")
    await admin.add_alias(bob, "sofos", "σοφος μεγας")
    await refused(admin.add_alias(alice, mine.slug, "Σοφοσ ΜΕΓΑΣ"), "ALIAS_TAKEN")
    for text in ("@ΣΟΦΟΣ's words", "İ @ΣΟΦΟΣ hello", "@σοφοσ hi"):
        assert [slug for slug, _ in await mentioned(admin, bob, text)] == ["sofos"], text
    found = await admin._store.find_personality("ΣΟΦΟσ")
    assert found is not None
    assert found.slug == "sofos"


async def test_a_slug_is_compared_as_written(
    admin: Admin, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    await admin.create_personality(bob, draft("Sage", slug="bobs-sage"))
    herb = await admin.create_personality(alice, draft("Herb", slug="sage-"))
    assert herb.slug == "sage-"
    await refused(admin.create_personality(alice, draft("Thyme", slug="sage")), "NAME_TAKEN")
    assert await mentioned(admin, bob, "@sage- hi @Sage") == [
        ("sage-", "@sage-"),
        ("bobs-sage", "@Sage"),
    ]


TRICKY = (
    "Мира",
    "МИРА Вторая",
    "ΣΟΦΊΑΣ",
    "Σοφοσ",
    "ΣΟΦΟΣ's",
    "Σοφία",
    "İstanbul",
    "✨Luna✨",
    "Dr. Who?",
    "Sage\u00a0 🌙",
    "KELVIN \u212a",
    "a]b\\c-d^e[f",
    "R2-D2 [beta]^\\",
    "ẞtraße",
    "アリス・マーガトロイド",
)


async def test_key_pattern_finds_tricky_names_with_postgres(engine: AsyncEngine) -> None:
    """Postgres' `~` under the C collation reads each bracket expression as `re` does: every
    name is found by its key, by its text normalized and by each run of its first words."""
    async with engine.connect() as conn:
        for name in TRICKY:
            for key in (mention_key(name), normalize_alias(name)):
                words = key.split(" ")
                for end in range(1, len(words) + 1):
                    pattern = key_pattern(" ".join(words[:end]))
                    found = await conn.scalar(
                        sa.text('select cast(:name as text) collate "C" ~ :pattern'),
                        {"name": name, "pattern": pattern},
                    )
                    assert found is True, (name, words[:end], pattern)
            other = await conn.scalar(
                sa.text('select cast(:name as text) collate "C" ~ :pattern'),
                {"name": name, "pattern": key_pattern(mention_key(name) + "x")},
            )
            assert other is False, name
