"""Deleting a personality also deletes the clones marked for it that voice_clones never recorded
(their answer lost after ElevenLabs made them), from its owner's and its cloners' accounts
(admin/deletions.py `_delete_lost_clones`); a voice id another personality stores (set by
hand) is kept, and so is a clone marked for another personality.

That step runs after the deletion is marked, with a short wait for ElevenLabs, and only for a
personality that ever had a sample or a clone. Before, every deletion listed the owner's account
first, inside the deletion's locks and before its mark, waiting up to 480 s: a slow ElevenLabs
made the bot's deadline cancel the deletion every time, and one that was down dropped the lost
clones for good. Now a slow or unreachable ElevenLabs hands the deletion to the sweep, which
tries again; an account that cannot be listed for good (no key) is skipped.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake (each user's account,
each clone's mark).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.deletions import LOST_CLONES_RETRY_SECONDS
from tzurot.gateway.domain import Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition, Unavailable

from .conftest import ALICE, FakeKeyVault, FakeMemory, FakeSpeech

pytestmark = pytest.mark.component


async def test_the_lost_clones_marked_for_it_go_with_the_personality(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(PersonalitySeed(name="Wren"), owner_user_id=alice.id)
    heron, _ = await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    await VoiceStore(engine).put_voice(
        wren.id, Voice(provider="elevenlabs", voice_id="clone-1"), cloned_by=alice.id
    )
    # Made for Wren, never recorded: one lost, one she set by hand as Heron's voice.
    speech.accounts[alice.id] = {"clone-1", "lost-1", "lost-2", "heron-1"}
    speech.marks.update(
        {"clone-1": wren.id, "lost-1": wren.id, "lost-2": wren.id, "heron-1": heron.id}
    )
    await voiced_admin.set_personality_voice(
        Principal(alice), "heron", Voice(provider="elevenlabs", voice_id="lost-2")
    )

    await voiced_admin.delete_personality(Principal(alice), "wren")

    assert speech.deletes == [(alice.id, "clone-1"), (alice.id, "lost-1")]
    assert speech.accounts[alice.id] == {"lost-2", "heron-1"}


async def wren_with_a_sample(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech
) -> tuple[User, Personality]:
    """Alice's Wren, with a sample, and a clone marked for it in her account that nothing
    records (lost-1)."""
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(PersonalitySeed(name="Wren"), owner_user_id=alice.id)
    await VoiceStore(engine).add_sample(
        wren.id, alice.id, filename="a.mp3", fmt="mp3", duration_secs=1.0, data=b"ID3",
        max_samples=25,
    )  # fmt: skip
    speech.accounts[alice.id] = {"lost-1"}
    speech.marks["lost-1"] = wren.id
    return alice, wren


async def personality_row(engine: AsyncEngine, personality_id: str) -> bool:
    async with engine.connect() as conn:
        return bool(
            await conn.scalar(
                sa.text("select count(*) from core.personalities where id = :id"),
                {"id": personality_id},
            )
        )


async def test_a_personality_that_never_had_a_voice_asks_elevenlabs_nothing(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, speech: FakeSpeech,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(PersonalitySeed(name="Wren"), owner_user_id=alice.id)
    speech.accounts[alice.id] = {"other-1"}  # she has an ElevenLabs key

    await voiced_admin.delete_personality(Principal(alice), "wren")

    assert speech.listed == []
    assert await store.get_personality(wren.id) is None


async def test_elevenlabs_slow_to_list_neither_holds_nor_cancels_the_deletion(
    gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine, memory: FakeMemory,
    keyvault: FakeKeyVault, speech: FakeSpeech,
) -> None:  # fmt: skip
    admin = Admin(
        gateway=gateway, store=store, memory=memory, keyvault=keyvault,
        operator_identities=frozenset({"cli"}), speech=speech, marked_clones_wait_seconds=0.2,
    )  # fmt: skip
    alice, wren = await wren_with_a_sample(gateway, store, engine, speech)
    listing = speech.marked_clones

    async def hangs(user_id: str, personality_id: str) -> list[str]:
        await asyncio.sleep(3600)  # ElevenLabs slow to answer
        return []

    speech.marked_clones = hangs  # type: ignore[method-assign]  # ElevenLabs slow, for a while
    with pytest.raises(FailedPrecondition) as pending:  # well within the bot's 30 s
        await asyncio.wait_for(admin.delete_personality(Principal(alice), "wren"), 10)
    assert pending.value.reason == "DELETION_PENDING"
    assert await store.get_personality(wren.id) is None  # marked: found by no lookup
    assert await personality_row(engine, wren.id)  # its lost clone still to sweep

    speech.marked_clones = listing  # type: ignore[method-assign]  # ElevenLabs answers again
    assert await admin.finish_pending_deletions() == 1
    assert speech.deletes == [(alice.id, "lost-1")]
    assert not await personality_row(engine, wren.id)


async def test_elevenlabs_unreachable_leaves_the_lost_clones_to_the_sweep(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice, wren = await wren_with_a_sample(gateway, store, engine, speech)
    speech.error = Unavailable("elevenlabs could not be reached")

    with pytest.raises(FailedPrecondition) as pending:
        await voiced_admin.delete_personality(Principal(alice), "wren")
    assert pending.value.reason == "DELETION_PENDING"
    assert speech.accounts[alice.id] == {"lost-1"}

    speech.error = None
    assert await voiced_admin.finish_pending_deletions() == 1
    assert speech.deletes == [(alice.id, "lost-1")]
    assert speech.accounts[alice.id] == set()
    assert not await personality_row(engine, wren.id)


async def test_an_account_that_cannot_be_listed_for_good_is_skipped(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice, wren = await wren_with_a_sample(gateway, store, engine, speech)
    speech.error = FailedPrecondition("no elevenlabs key", reason="NO_API_KEY")

    await voiced_admin.delete_personality(Principal(alice), "wren")

    assert speech.accounts[alice.id] == {"lost-1"}
    assert not await personality_row(engine, wren.id)


async def test_the_sweep_stops_waiting_for_elevenlabs_after_a_day(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice, wren = await wren_with_a_sample(gateway, store, engine, speech)
    speech.error = Unavailable("elevenlabs could not be reached")
    with pytest.raises(FailedPrecondition):
        await voiced_admin.delete_personality(Principal(alice), "wren")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "update core.personalities set deletion_requested_at = now() - make_interval("
                "secs => :secs) where id = :id"
            ),
            {"secs": LOST_CLONES_RETRY_SECONDS + 60, "id": wren.id},
        )

    assert await voiced_admin.finish_pending_deletions() == 1

    assert speech.accounts[alice.id] == {"lost-1"}  # left, logged
    assert not await personality_row(engine, wren.id)
