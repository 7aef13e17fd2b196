"""On real Postgres: a personality's id, as the name of a personality, means that personality
alone (the bot checks one with GetPersonality, then acts on it by its id), and nothing once
the user may no longer use it: never another personality that a name of that text means
(review of dbc585c3, finding 3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import NotFound

from .alias_rules_support import draft
from .conftest import ALICE
from .test_alias_rules_visibility import BOB

pytestmark = pytest.mark.component


async def test_an_id_means_its_personality_and_nothing_once_it_is_not_usable(
    admin: Admin, gateway: Gateway
) -> None:
    alice, bob = Principal(await gateway.user(ALICE)), Principal(await gateway.user(BOB))
    sage = await admin.create_personality(bob, draft("Sage", slug="sage-b", public=True))
    mine = await admin.create_personality(alice, draft("Mine", slug="mine-a", public=False))

    assert (await gateway.get_personality(sage.id, ALICE)).id == sage.id
    assert (await gateway.get_personality(mine.id, ALICE)).id == mine.id

    await admin.update_personality(bob, replace(sage, public=False), ["public"])
    with pytest.raises(NotFound):
        await gateway.get_personality(sage.id, ALICE)  # nothing else of that text either
    assert (await gateway.get_personality(sage.id, BOB)).id == sage.id  # its owner's still
