"""Before each clone gateway sweeps the clones marked for its personality whose answer was lost
(admin/lost_clones.py), keeping every voice id a personality stores or voice_clones records,
each decided under the voice id's lock that storing a voice takes.

Before, inference swept with a keep list gateway built from the cloner's own recorded clones in
use: a lost clone she had set by hand as another personality's voice, or another cloner's clone
in the same ElevenLabs account, was deleted, and a voice stored while the clone ran was never
seen (/tmp/review160/gw/test_sweep_in_use.py). Inference now only marks the clone.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore

from .conftest import ALICE, FakeSpeech

pytestmark = pytest.mark.component

RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a premade voice, set by hand
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


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

    assert speech.cloned == [(alice.id, wren.id)] * 5  # marked for Wren
    assert speech.listed == [(alice.id, wren.id)] * 5  # a sweep every time
    # Only the clones each new one replaced; the sweeps found nothing lost.
    assert speech.deletes == [(alice.id, "clone-1"), (alice.id, "clone-3"), (alice.id, "clone-4")]
    assert speech.accounts[alice.id] == {"clone-2", "clone-5"}


async def test_the_sweep_keeps_every_voice_id_stored_or_recorded_and_deletes_the_lost_one(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    alice, bob = await gateway.user(ALICE), await gateway.user(BOB)
    owner = Principal(alice)
    wren = await with_a_sample(store, engine, "Wren", alice)
    await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    voices = VoiceStore(engine)
    # Bob stores a key of Alice's ElevenLabs account: one account, two Tzurot users. His clone
    # of Wren is recorded (then replaced by hand); it is his to delete, not the sweep's.
    speech.accounts[alice.id] = speech.accounts[bob.id] = {"bob-1", "mine-1", "lost-1", "lost-2"}
    speech.marks.update({v: wren.id for v in speech.accounts[alice.id]})
    await voices.put_voice(wren.id, by_hand("bob-1"), cloned_by=bob.id)
    await voices.put_voice(wren.id, by_hand("mine-1"), cloned_by=alice.id)  # Wren's voice now
    # Made for Wren, never recorded (their answer lost); she set lost-1 by hand as Heron's.
    await voiced_admin.set_personality_voice(owner, "heron", by_hand("lost-1"))

    await voiced_admin.clone_voice(owner, "wren")

    assert (alice.id, "lost-2") in speech.deletes
    assert {v for _, v in speech.deletes} == {"lost-2", "mine-1"}  # mine-1: replaced by clone-1
    assert speech.accounts[alice.id] == {"bob-1", "lost-1", "clone-1"}


async def test_a_voice_stored_while_the_sweep_deletes_it_waits_for_the_voice_id_lock(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """The sweep decides and deletes under the lock `put_voice` takes: a voice set by hand
    meanwhile is seen by it, or stored once the deletion is over, never in between."""
    alice = await gateway.user(ALICE)
    wren = await with_a_sample(store, engine, "Wren", alice)
    heron, _ = await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    speech.accounts[alice.id] = {"lost-1"}
    speech.marks["lost-1"] = wren.id
    speech.delete_gate = asyncio.Event()
    cloning = asyncio.create_task(voiced_admin.clone_voice(Principal(alice), "wren"))
    try:
        await asyncio.wait_for(speech.delete_started.wait(), 10)  # gateway's sweep deletes it
        storing = asyncio.create_task(VoiceStore(engine).put_voice(heron.id, by_hand("lost-1")))
        await asyncio.sleep(0.3)
        assert not storing.done()  # waits for the voice id's lock
    finally:
        speech.delete_gate.set()
    await cloning
    await storing
    assert speech.deletes == [(alice.id, "lost-1")]
    assert speech.accounts[alice.id] == {"clone-1"}
