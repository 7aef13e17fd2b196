"""A clone asks inference to sweep the clones marked for its personality whose answer was lost,
keeping every voice id still in use (CloneVoiceHeader.keep_voice_ids): its voice now and each
earlier clone of it a personality still stores (reused by hand for another). Before, inference
kept one voice id only, so with two in use gateway asked for no sweep at all, and a lost clone
held a slot of the user's plan.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore

from .conftest import ALICE, FakeSpeech

pytestmark = pytest.mark.component

RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a premade voice, set by hand


async def with_a_sample(
    store: GatewayStore, engine: AsyncEngine, name: str, owner: User
) -> Personality:
    personality, _ = await store.import_personality(
        PersonalitySeed(name=name), owner_user_id=owner.id
    )
    await VoiceStore(engine).add_sample(
        personality.id, owner.id, filename="a.mp3", fmt="mp3", duration_secs=1.0, data=b"ID3",
        max_samples=25,
    )  # fmt: skip
    return personality


def by_hand(voice_id: str) -> Voice:
    return Voice(provider="elevenlabs", voice_id=voice_id)


async def test_every_clone_sweeps_keeping_every_voice_id_in_use(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    owner = Principal(alice)
    wren = await with_a_sample(store, engine, "Wren", alice)
    await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    await voiced_admin.clone_voice(owner, "wren")  # clone-1
    await voiced_admin.clone_voice(owner, "wren")  # clone-2; clone-1 deleted
    await voiced_admin.set_personality_voice(owner, "heron", by_hand("clone-2"))
    await voiced_admin.clone_voice(owner, "wren")  # clone-3: Wren's; clone-2 Heron's
    await voiced_admin.clone_voice(owner, "wren")  # clone-4: two in use, swept all the same
    await voiced_admin.set_personality_voice(owner, "wren", by_hand(RACHEL))
    await voiced_admin.clone_voice(owner, "wren")  # clone-5

    assert speech.cloned == [(alice.id, wren.id)] * 5  # a sweep every time
    assert speech.keeps == [
        set(),
        {"clone-1"},
        {"clone-2"},
        {"clone-2", "clone-3"},  # Heron's and Wren's: both kept
        {"clone-2", RACHEL},  # clone-4 set aside by hand: no longer kept
    ]
    assert speech.accounts[alice.id] == {"clone-2", "clone-5"}
