"""A user's data deletion deletes the lost clones (made by ElevenLabs, their answer never
recorded in voice_clones) marked for her private personalities, from her account and their
cloners', with her key, before her key goes; and a personality's deletion finished by the sweep
still lists the accounts of the cloners whose recorded clones its request deleted.

Before, her data deletion deleted only the recorded clones: a lost one of her private
personality stayed in her ElevenLabs account, holding a slot of her plan for good once her key
was gone (nothing of Tzurot's could reach it). And a personality's deletion kept the cloners it
listed in memory only: the request deleted their recorded clones (their voice_clones rows with
them), so a retry by the sweep (memory or ElevenLabs away at the first try) did not list their
accounts, and their lost clones stayed. Now the cloners are kept with the mark
(`personalities.deletion_cloners`), and a cloner's own data deletion lists her account for the
personalities under deletion that kept her.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake (each user's account,
each clone's mark).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.deletions import LOST_CLONES_RETRY_SECONDS
from tzurot.gateway.domain import Actor, Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition, Unavailable

from .conftest import ALICE, FakeKeyVault, FakeMemory, FakeSpeech

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


async def with_a_sample(
    store: GatewayStore, engine: AsyncEngine, name: str, owner: User, *, public: bool = False
) -> Personality:
    personality, _ = await store.import_personality(
        PersonalitySeed(name=name, public=public), owner_user_id=owner.id
    )
    await VoiceStore(engine).add_sample(
        personality.id, owner.id, filename="a.mp3", fmt="mp3", duration_secs=1.0, data=b"ID3",
        max_samples=25,
    )  # fmt: skip
    return personality


async def elevenlabs_key(keyvault: FakeKeyVault, user: User) -> None:
    keyvault.keys[user.id, "elevenlabs"] = SecretStr(f"sk_{user.id}")


def listings_with_her_key(speech: FakeSpeech, keyvault: FakeKeyVault) -> list[bool]:
    """Whether each listing of an account found its owner's key still in keyvault."""
    seen: list[bool] = []
    listing = speech.marked_clones

    async def marked_clones(user_id: str, personality_id: str) -> list[str]:
        seen.append((user_id, "elevenlabs") in keyvault.keys)
        return await listing(user_id, personality_id)

    speech.marked_clones = marked_clones  # type: ignore[method-assign]  # observed, not changed
    return seen


async def her_lost_clone_with_elevenlabs_away(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech,
    keyvault: FakeKeyVault,
) -> tuple[User, Personality]:  # fmt: skip
    """Alice with her ElevenLabs key and her private Wren, a lost clone of hers marked for it
    (lost-1), and ElevenLabs unreachable."""
    alice = await gateway.user(ALICE)
    await elevenlabs_key(keyvault, alice)
    wren = await with_a_sample(store, engine, "Wren", alice)
    speech.accounts[alice.id] = {"lost-1"}
    speech.marks["lost-1"] = wren.id
    speech.error = Unavailable("elevenlabs could not be reached")
    return alice, wren


async def row_count(engine: AsyncEngine, table: sa.Table, row_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.c.id == row_id)
        )
    return int(count or 0)


async def test_her_data_deletion_deletes_the_lost_clones_of_her_private_personalities(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    await elevenlabs_key(keyvault, alice)
    wren = await with_a_sample(store, engine, "Wren", alice)
    wren2 = await with_a_sample(store, engine, "Wren Two", alice)
    heron = await with_a_sample(store, engine, "Heron", alice, public=True)
    # Lost clones of her private ones; one she set by hand as her public Heron's voice (kept:
    # Heron stays), one as Wren Two's (goes with it); one marked for Heron (not deleted).
    speech.accounts[alice.id] = {"lost-1", "lost-2", "on-heron", "on-wren2", "heron-lost"}
    speech.marks.update(
        {
            "lost-1": wren.id,
            "lost-2": wren2.id,
            "on-heron": wren.id,
            "on-wren2": wren.id,
            "heron-lost": heron.id,
        }
    )
    voices = VoiceStore(engine)
    await voices.put_voice(heron.id, Voice(provider="elevenlabs", voice_id="on-heron"))
    await voices.put_voice(wren2.id, Voice(provider="elevenlabs", voice_id="on-wren2"))
    with_key = listings_with_her_key(speech, keyvault)

    await voiced_admin.delete_user_data(Principal(alice))

    assert speech.accounts[alice.id] == {"on-heron", "heron-lost"}
    assert sorted(speech.deletes) == sorted(
        [(alice.id, "lost-1"), (alice.id, "lost-2"), (alice.id, "on-wren2")]
    )
    assert with_key
    assert all(with_key)  # listed while her key was there
    assert await keyvault.list_keys(alice.id) == []
    assert not await row_count(engine, t.users, alice.id)


async def test_elevenlabs_away_keeps_her_key_until_the_sweep_deleted_her_lost_clones(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    alice, wren = await her_lost_clone_with_elevenlabs_away(
        gateway, store, engine, speech, keyvault
    )

    with pytest.raises(FailedPrecondition) as pending:
        await voiced_admin.delete_user_data(Principal(alice))
    assert pending.value.reason == "DELETION_PENDING"
    assert speech.accounts[alice.id] == {"lost-1"}
    assert [k.provider for k in await keyvault.list_keys(alice.id)] == ["elevenlabs"]
    assert await row_count(engine, t.users, alice.id)

    speech.error = None  # ElevenLabs answers again
    assert await voiced_admin.finish_pending_deletions() >= 1
    assert speech.accounts[alice.id] == set()
    assert await keyvault.list_keys(alice.id) == []
    assert not await row_count(engine, t.users, alice.id)
    assert not await row_count(engine, t.personalities, wren.id)


async def test_after_a_day_her_deletion_gives_up_on_them_and_her_key_goes(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    alice, _ = await her_lost_clone_with_elevenlabs_away(gateway, store, engine, speech, keyvault)
    with pytest.raises(FailedPrecondition):
        await voiced_admin.delete_user_data(Principal(alice))
    async with engine.begin() as conn:
        for table in ("users", "personalities"):
            await conn.execute(
                sa.text(
                    f"update core.{table} set deletion_requested_at = now() - make_interval("  # noqa: S608  # a fixed table name
                    "secs => :secs) where deletion_requested_at is not null"
                ),
                {"secs": LOST_CLONES_RETRY_SECONDS + 60},
            )

    assert await voiced_admin.finish_pending_deletions() >= 1

    assert speech.accounts[alice.id] == {"lost-1"}  # left, logged
    assert await keyvault.list_keys(alice.id) == []
    assert not await row_count(engine, t.users, alice.id)


async def bobs_clone_replaced_by_hand(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech
) -> tuple[User, User, Personality]:
    """Alice's public Wren, cloned by Bob (recorded: bob-1), its voice since set by hand to a
    premade one (so only voice_clones names Bob); and a clone of Bob's marked for Wren that
    nothing records (bob-lost)."""
    alice, bob = await gateway.user(ALICE), await gateway.user(BOB)
    wren = await with_a_sample(store, engine, "Wren", alice, public=True)
    voices = VoiceStore(engine)
    await voices.put_voice(
        wren.id, Voice(provider="elevenlabs", voice_id="bob-1"), cloned_by=bob.id
    )
    await voices.put_voice(wren.id, Voice(provider="elevenlabs", voice_id="premade-1"))
    speech.accounts[bob.id] = {"bob-1", "bob-lost"}
    speech.marks.update({"bob-1": wren.id, "bob-lost": wren.id})
    return alice, bob, wren


async def test_a_retried_personality_deletion_lists_the_cloners_its_request_deleted_clones_of(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, memory: FakeMemory,
) -> None:  # fmt: skip
    alice, bob, wren = await bobs_clone_replaced_by_hand(gateway, store, engine, speech)
    memory.error = Unavailable("memory is restarting")

    with pytest.raises(FailedPrecondition) as pending:
        await voiced_admin.delete_personality(Principal(alice), "wren")
    assert pending.value.reason == "DELETION_PENDING"
    assert speech.accounts[bob.id] == {"bob-lost"}  # his recorded clone went, its row too

    memory.error = None
    assert await voiced_admin.finish_pending_deletions() == 1
    assert speech.accounts[bob.id] == set()
    assert not await row_count(engine, t.personalities, wren.id)


async def test_a_cloner_deleting_his_data_first_has_his_account_listed_for_it(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, memory: FakeMemory, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    """Wren's deletion waits for the sweep; Bob deletes his data meanwhile: his key goes, so
    Wren's deletion could no longer list his account. His own deletion lists it first."""
    alice, bob, wren = await bobs_clone_replaced_by_hand(gateway, store, engine, speech)
    await elevenlabs_key(keyvault, bob)
    memory.error = Unavailable("memory is restarting")
    with pytest.raises(FailedPrecondition):
        await voiced_admin.delete_personality(Principal(alice), "wren")
    memory.error = None
    with_key = listings_with_her_key(speech, keyvault)

    await voiced_admin.delete_user_data(Principal(bob))

    assert speech.accounts[bob.id] == set()
    assert with_key == [True]
    assert await keyvault.list_keys(bob.id) == []
    assert await row_count(engine, t.personalities, wren.id)  # still its sweep's to finish
