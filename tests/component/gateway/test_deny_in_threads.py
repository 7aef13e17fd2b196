"""A channel denylist entry names a channel, and so every thread of it, or one thread (review:
`/admin deny add scope: channel` run in a thread stored the thread's id, which the matching
compared with the parent channel only: the entry was "Added" and never applied). On real
Postgres, through Generate (the turn's one statement) and the store's own matching (what
Generate falls back to)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tzurot.gateway.admin import Principal
from tzurot.gateway.domain import DenyEntry, DenyMode, DenyScope, DenyTarget, Location, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import PermissionDenied

from .conftest import ALICE, FakeInference, FakeKeyVault, FakeMemory
from .test_policy import admin_for, make_gateway, run

pytestmark = pytest.mark.component

GUILD, CHANNEL = "100000000000000101", "100000000000000102"
THREAD, SIBLING = "100000000000000103", "100000000000000104"
IN_THREAD = Location(guild_id=GUILD, channel_id=CHANNEL, thread_id=THREAD)
IN_SIBLING = Location(guild_id=GUILD, channel_id=CHANNEL, thread_id=SIBLING)
IN_CHANNEL = Location(guild_id=GUILD, channel_id=CHANNEL)


def channel_deny(scope_id: str) -> DenyEntry:
    return DenyEntry(
        "", DenyTarget.USER, ALICE.platform_user_id, DenyScope.CHANNEL, scope_id,
        DenyMode.BLOCK, "", datetime.now(UTC),
    )  # fmt: skip


async def refused_at(gateway: Gateway, key: str, where: Location) -> str:
    """The denylist's reason for refusing Alice's message at `where`, or "" (answered)."""
    try:
        await run(gateway, key=key, location=where)
    except PermissionDenied as denied:
        return denied.reason
    return ""


async def test_a_channel_deny_naming_a_thread_applies_in_that_thread_alone(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    gateway = make_gateway(store, inference, memory, keyvault)
    admin = admin_for(gateway, store, memory, keyvault)
    await admin.add_deny(Principal(None), channel_deny(THREAD))
    assert await refused_at(gateway, "in-thread", IN_THREAD) == "DENYLISTED"
    assert await refused_at(gateway, "in-channel", IN_CHANNEL) == ""
    assert await refused_at(gateway, "in-sibling", IN_SIBLING) == ""


async def test_a_channel_deny_naming_the_channel_applies_in_its_threads(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    gateway = make_gateway(store, inference, memory, keyvault)
    admin = admin_for(gateway, store, memory, keyvault)
    await admin.add_deny(Principal(None), channel_deny(CHANNEL))
    for key, where in [
        ("in-channel", IN_CHANNEL),
        ("in-thread", IN_THREAD),
        ("in-sibling", IN_SIBLING),
    ]:
        assert await refused_at(gateway, key, where) == "DENYLISTED"


async def test_the_stores_own_matching_takes_the_thread_too(
    store: GatewayStore, lilith: Personality
) -> None:
    """What Generate asks when the turn's statement found no user yet (`_check_denylist`)."""
    admin_store = AdminStore(store.engine, store.catalog)
    stored = await admin_store.add_deny(
        target=DenyTarget.USER, target_id=ALICE.platform_user_id, scope=DenyScope.CHANNEL,
        scope_id=THREAD, mode=DenyMode.BLOCK, reason="",
    )  # fmt: skip
    where = {
        "user_id": ALICE.platform_user_id, "guild_id": GUILD, "channel_id": CHANNEL,
        "personality_slug": "lilith",
    }  # fmt: skip
    matched = await admin_store.matching_deny(**where, thread_id=THREAD)
    assert [e.id for e in matched] == [stored.id]
    assert await admin_store.matching_deny(**where, thread_id=SIBLING) == []
    assert await admin_store.matching_deny(**where) == []
