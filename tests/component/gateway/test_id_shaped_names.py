"""On real Postgres: no slug, display name or global alias is spelled as an id, and an id
means its personality or nothing everywhere, Generate included (review of 6fb52235,
findings 2 and 3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import InvalidArgument, NotFound

from .alias_rules_support import draft
from .conftest import ALICE, FakeInference, command
from .test_alias_rules_visibility import BOB

pytestmark = pytest.mark.component


async def test_a_slug_name_or_alias_spelled_as_an_id_is_refused(
    admin: Admin, gateway: Gateway
) -> None:
    alice, bob = Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))
    sage = await admin.create_personality(alice, draft("Sage", slug="sage-p", public=True))
    for made in (
        draft("Bobs", slug=sage.id, public=True),
        draft(sage.id.upper(), slug="bobs-n", public=True),
        draft(sage.id, public=False),  # its slug is made from the name
    ):
        with pytest.raises(InvalidArgument) as caught:
            await admin.create_personality(bob, made)
        assert caught.value.reason == "NAME_LOOKS_LIKE_ID"
    bobs = await admin.create_personality(bob, draft("Bobs", slug="bobs", public=True))
    with pytest.raises(InvalidArgument) as caught:
        await admin.update_personality(bob, replace(bobs, display_name=sage.id), ["display_name"])
    assert caught.value.reason == "NAME_LOOKS_LIKE_ID"
    with pytest.raises(InvalidArgument) as caught:
        await admin.add_alias(bob, "bobs", sage.id)
    assert caught.value.reason == "NAME_LOOKS_LIKE_ID"


async def test_an_id_means_its_personality_or_nothing_for_generate_too(
    admin: Admin, gateway: Gateway, inference: FakeInference
) -> None:
    """Bob may not take Sage's id as his own alias either; the id is Sage in Generate as in
    every lookup; private, it is nothing; deleted, still nothing, in the same words (a private
    personality is not told from a deleted one)."""
    alice, bob = Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))
    sage = await admin.create_personality(alice, draft("Sage", slug="sage-p", public=True))
    await admin.create_personality(bob, draft("Bobs", slug="bobs", public=True))
    with pytest.raises(InvalidArgument) as caught:
        await admin.add_personal_alias(bob, "bobs", f"@{sage.id.upper()}")
    assert caught.value.reason == "NAME_LOOKS_LIKE_ID"
    events = [e async for e in gateway.generate(command(personality=sage.id, actor=BOB))]
    assert events
    assert inference.requests[-1].personality.id == sage.id

    await admin.update_personality(alice, replace(sage, public=False), ["public"])
    with pytest.raises(NotFound) as private:
        await gateway.get_personality(sage.id, BOB)
    await admin.delete_personality(alice, "sage-p")
    with pytest.raises(NotFound) as deleted:
        await gateway.get_personality(sage.id, BOB)
    assert str(private.value) == str(deleted.value)
