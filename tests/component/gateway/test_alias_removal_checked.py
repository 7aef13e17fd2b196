"""RemoveAlias naming the personality (`RemoveAliasRequest.personality`, what the bot's
`/character alias remove` sends: the id of the personality it checked) removes the alias only
while it is that personality's (review: the confirmed call carried the alias alone, so an
alias moved to another personality in between was removed from that other one). On real
Postgres, through the admin use-case the servicer calls."""

from __future__ import annotations

import asyncio

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import NotFound, PermissionDenied

from .alias_rules_support import draft
from .conftest import ALICE
from .test_alias_rules_visibility import BOB
from .test_policy import ROOT

pytestmark = pytest.mark.component


@pytest.fixture
async def people(admin: Admin, gateway: Gateway) -> tuple[Principal, Principal]:
    return Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))


async def aliases(store: GatewayStore, personality: Personality) -> tuple[str, ...]:
    store.catalog.clear()
    found = await store.get_personality(personality.id)
    assert found is not None
    return found.aliases


async def test_an_alias_moved_to_another_personality_is_not_removed_from_it(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, _ = people
    first = await admin.create_personality(alice, draft("Quill", slug="quill"))
    second = await admin.create_personality(alice, draft("Ink", slug="ink"))
    await admin.add_alias(alice, first.slug, "scribe")
    # The bot checked: "scribe" is Quill's. Then it moves to Ink before the click lands.
    await admin.remove_alias(alice, "scribe", first.id)
    await admin.add_alias(alice, second.slug, "scribe")

    with pytest.raises(NotFound) as refused:
        await admin.remove_alias(alice, "SCRIBE", first.id)
    assert refused.value.reason == "ALIAS_NOT_FOUND"
    assert str(refused.value) == "'SCRIBE' is not an alias of Quill; nothing removed"
    assert await aliases(store, second) == ("scribe",)

    await admin.remove_alias(alice, "@Scribe", second.id)  # named as it is held: removed
    assert await aliases(store, second) == ()


async def test_the_personality_is_read_as_elsewhere_and_only_its_owner_removes(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    alice, bob = people
    quill = await admin.create_personality(alice, draft("Quill", slug="quill"))
    await admin.add_alias(alice, quill.slug, "scribe")
    with pytest.raises(PermissionDenied) as denied:
        await admin.remove_alias(bob, "scribe", quill.id)
    assert denied.value.reason == "NOT_OWNER"
    with pytest.raises(NotFound) as gone:
        await admin.remove_alias(alice, "scribe", "00000000-0000-0000-0000-000000000000")
    assert gone.value.reason == "PERSONALITY_NOT_FOUND"
    assert await aliases(store, quill) == ("scribe",)
    await admin.remove_alias(alice, "scribe", "quill")  # by slug, as a CLI may
    assert await aliases(store, quill) == ()


async def test_without_a_personality_the_alias_goes_from_whichever_has_it(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    """An older bot's request (no personality): as before."""
    alice, _ = people
    quill = await admin.create_personality(alice, draft("Quill", slug="quill"))
    await admin.add_alias(alice, quill.slug, "scribe")
    await admin.remove_alias(alice, "scribe")
    assert await aliases(store, quill) == ()
    with pytest.raises(NotFound):
        await admin.remove_alias(alice, "scribe")


async def test_the_operator_and_a_superuser_remove_by_id_from_anyones_personality(
    admin: Admin,
    store: GatewayStore,
    people: tuple[Principal, Principal],
) -> None:
    """Neither owns Alice's private Quill; both find it (`operator=True`, a superuser sees
    every personality) and may change it."""
    alice, _ = people
    root = Principal(await store.upsert_user(ROOT, superuser=True))
    quill = await admin.create_personality(alice, draft("Quill", slug="quill", public=False))
    for alias in ("scribe", "pen"):
        await admin.add_alias(alice, quill.slug, alias)
    await admin.remove_alias(Principal(None), "scribe", quill.id)
    assert await aliases(store, quill) == ("pen",)
    await admin.remove_alias(root, "pen", quill.id)
    assert await aliases(store, quill) == ()


async def test_of_two_removals_at_once_one_removes_and_the_other_is_told_none_is_left(
    admin: Admin, store: GatewayStore, people: tuple[Principal, Principal]
) -> None:
    """Two clicks of the same confirmation (two bots, or a retry): the alias goes once; the
    other is ALIAS_NOT_FOUND, not a success for nothing and not an error of ours."""
    alice, _ = people
    quill = await admin.create_personality(alice, draft("Quill", slug="quill"))
    ink = await admin.create_personality(alice, draft("Ink", slug="ink"))
    await admin.add_alias(alice, quill.slug, "scribe")
    await admin.add_alias(alice, ink.slug, "pen")
    outcomes = await asyncio.gather(
        admin.remove_alias(alice, "scribe", quill.id),
        admin.remove_alias(alice, "scribe", quill.id),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert outcomes.count(None) == 1
    assert len(refused) == 1
    assert isinstance(refused[0], NotFound)
    assert refused[0].reason == "ALIAS_NOT_FOUND"
    assert await aliases(store, quill) == ()
    assert await aliases(store, ink) == ("pen",)  # nobody else's alias went with it
