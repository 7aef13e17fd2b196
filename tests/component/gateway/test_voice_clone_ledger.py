"""Every voice Tzurot cloned stays recorded (core.voice_clones, voice_store.py) apart from the
voice a personality uses now, so the deletions find a clone replaced or removed by hand; and a
voice id some personality still stores is never deleted (a clone reused by hand for a second
personality), decided under the voice id's lock that storing a voice waits for.

Review 143, findings 2 and 4. Real Postgres for `core`; inference's voice RPCs are a fake
holding each user's ElevenLabs account (the voices it has) that records every DeleteVoice.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition

from .conftest import ALICE, FakeSpeech

pytestmark = pytest.mark.component

ROOT = Actor(platform_user_id="100000000000000009", display_name="Root")
BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a premade voice, set by hand


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


async def recorded(engine: AsyncEngine) -> set[tuple[str, str]]:
    """The clones voice_clones records: (cloner, voice id)."""
    c = t.voice_clones.c
    async with engine.connect() as conn:
        return {(str(a), b) for a, b in await conn.execute(sa.select(c.cloner_id, c.voice_id))}


def by_hand(voice_id: str) -> Voice:
    return Voice(provider="elevenlabs", voice_id=voice_id)


async def voice_id_of(engine: AsyncEngine, personality: Personality) -> str | None:
    """The voice id the personality stores now (None without a voice)."""
    voice = await VoiceStore(engine).voice(personality.id)
    return None if voice is None else voice.voice_id


async def heron_given_wrens_clone(
    admin: Admin, store: GatewayStore, engine: AsyncEngine, alice: User
) -> tuple[Voice, Personality]:
    """Alice's Wren (with a sample) cloned, and the clone set by hand as her Heron's voice
    (the same character as another persona): (the clone, Heron)."""
    owner = Principal(alice)
    await with_a_sample(store, engine, "Wren", alice)
    heron, _ = await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    made, _ = await admin.clone_voice(owner, "wren")
    await admin.set_personality_voice(owner, "heron", by_hand(made.voice_id))
    return made, heron


@pytest.fixture
async def alice(gateway: Gateway) -> User:
    return await gateway.user(ALICE)


# ---- finding 2: a voice another personality stores is never deleted ----


async def test_a_reclone_keeps_the_old_clone_another_personality_uses(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    owner = Principal(alice)
    first, heron = await heron_given_wrens_clone(voiced_admin, store, engine, alice)

    second, _ = await voiced_admin.clone_voice(owner, "wren")

    assert speech.deletes == []
    assert speech.accounts[alice.id] == {first.voice_id, second.voice_id}
    assert await voice_id_of(engine, heron) == first.voice_id
    # Still recorded: once Heron lets it go, the next clone of Wren deletes it.
    assert await recorded(engine) == {(alice.id, first.voice_id), (alice.id, second.voice_id)}
    await voiced_admin.set_personality_voice(owner, "heron", None)
    third, _ = await voiced_admin.clone_voice(owner, "wren")
    assert sorted(speech.deletes) == sorted(
        [(alice.id, first.voice_id), (alice.id, second.voice_id)]
    )
    assert speech.accounts[alice.id] == {third.voice_id}
    assert await recorded(engine) == {(alice.id, third.voice_id)}


async def test_the_sweep_deletes_no_clone_marked_for_it_that_a_personality_uses(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """Gateway's sweep before each clone (admin/lost_clones.py) deletes no clone marked for
    the personality that a personality uses (its voice now, an earlier clone of it reused by
    hand for Heron) or voice_clones records; inference only marks each clone for Wren."""
    alice = await gateway.user(ALICE)
    owner = Principal(alice)
    wren = await with_a_sample(store, engine, "Wren", alice)
    await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    await voiced_admin.clone_voice(owner, "wren")  # clone-1
    await voiced_admin.clone_voice(owner, "wren")  # clone-2; clone-1 deleted
    await voiced_admin.set_personality_voice(owner, "heron", by_hand("clone-2"))
    await voiced_admin.clone_voice(owner, "wren")  # clone-3: Wren's and Heron's voice
    await voiced_admin.set_personality_voice(owner, "wren", by_hand(RACHEL))
    await voiced_admin.clone_voice(owner, "wren")  # clone-4; clone-3 deleted

    assert speech.cloned == [(alice.id, wren.id)] * 4
    assert speech.listed == [(alice.id, wren.id)] * 4
    assert speech.accounts[alice.id] == {"clone-2", "clone-4"}


async def test_deleting_a_personality_keeps_its_clone_another_personality_uses(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    owner = Principal(alice)
    made, heron = await heron_given_wrens_clone(voiced_admin, store, engine, alice)

    await voiced_admin.delete_personality(owner, "wren")

    assert speech.deletes == []
    assert speech.accounts[alice.id] == {made.voice_id}
    assert await voice_id_of(engine, heron) == made.voice_id
    # Her data deletion still deletes the voice she cloned (Heron goes with it).
    await voiced_admin.delete_user_data(owner)
    assert speech.deletes == [(alice.id, made.voice_id)]
    assert speech.accounts[alice.id] == set()


async def test_a_voice_stored_while_its_clone_is_being_deleted_waits_for_the_deletion(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """The decision and the delete at ElevenLabs hold the voice id's lock: a voice set by hand
    meanwhile is stored after the deletion, never slipped in between the check and it."""
    owner = Principal(alice)
    await with_a_sample(store, engine, "Wren", alice)
    await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=alice.id)
    made, _ = await voiced_admin.clone_voice(owner, "wren")
    speech.delete_gate = asyncio.Event()
    deleting = asyncio.create_task(voiced_admin.delete_personality(owner, "wren"))
    await speech.delete_started.wait()
    setting = asyncio.create_task(
        voiced_admin.set_personality_voice(owner, "heron", by_hand(made.voice_id))
    )
    await asyncio.sleep(0.3)
    assert not setting.done()  # waits for the voice id's lock
    speech.delete_gate.set()
    await deleting
    await setting
    assert speech.deletes == [(alice.id, made.voice_id)]


# ---- finding 4: a clone replaced or removed by hand stays recorded ----


async def test_a_clone_removed_by_hand_is_deleted_with_the_personality(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    owner = Principal(alice)
    await with_a_sample(store, engine, "Wren", alice, public=True)
    made, _ = await voiced_admin.clone_voice(owner, "wren")
    await voiced_admin.set_personality_voice(owner, "wren", None)  # /personality voice remove

    await voiced_admin.delete_personality(owner, "wren")

    assert speech.deletes == [(alice.id, made.voice_id)]
    assert speech.accounts[alice.id] == set()
    assert await recorded(engine) == set()


async def test_a_clone_replaced_by_hand_is_deleted_by_the_cloners_data_deletion(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """Wren is public (her data deletion keeps it): the clone she replaced by hand goes from
    her account all the same, with her key."""
    owner = Principal(alice)
    await with_a_sample(store, engine, "Wren", alice, public=True)
    made, _ = await voiced_admin.clone_voice(owner, "wren")
    await voiced_admin.set_personality_voice(owner, "wren", by_hand(RACHEL))

    await voiced_admin.delete_user_data(owner)

    assert speech.deletes == [(alice.id, made.voice_id)]
    assert speech.accounts[alice.id] == set()


async def test_a_superuser_reclone_leaves_the_owners_clone_recorded_for_the_deletion(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """A clone by someone else is in their account: a superuser's clone does not delete the
    owner's, which stays recorded, and the personality's deletion deletes both, each with its
    cloner's key."""
    root = await store.upsert_user(ROOT, superuser=True)
    await with_a_sample(store, engine, "Wren", alice, public=True)
    hers, _ = await voiced_admin.clone_voice(Principal(alice), "wren")
    his, _ = await voiced_admin.clone_voice(Principal(root), "wren")
    assert speech.deletes == []
    assert await recorded(engine) == {(alice.id, hers.voice_id), (root.id, his.voice_id)}

    await voiced_admin.delete_personality(Principal(alice), "wren")

    assert sorted(speech.deletes) == sorted([(alice.id, hers.voice_id), (root.id, his.voice_id)])
    assert speech.accounts == {alice.id: set(), root.id: set()}
    assert await recorded(engine) == set()


async def test_a_clone_the_key_cannot_delete_stays_recorded_for_the_next_deletion(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """A rejected key: the personality is deleted all the same and the clone stays in her
    account, still recorded, so her data deletion tries again (with a key that works by
    then)."""
    owner = Principal(alice)
    await with_a_sample(store, engine, "Wren", alice, public=True)
    made, _ = await voiced_admin.clone_voice(owner, "wren")
    speech.error = FailedPrecondition(
        "ElevenLabs refused the key",
        reason="INVALID_API_KEY",
        metadata={"provider": "elevenlabs", "key_source": "user"},
    )

    await voiced_admin.delete_personality(owner, "wren")

    assert made.voice_id in speech.accounts[alice.id]
    assert await recorded(engine) == {(alice.id, made.voice_id)}
    speech.error = None
    await voiced_admin.delete_user_data(owner)
    assert speech.accounts[alice.id] == set()


async def test_her_data_deletion_deletes_her_clone_another_users_personality_stores(
    voiced_admin: Admin, alice: User, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:  # fmt: skip
    """Her own clones go with her data whatever stores them: her key goes too, so nothing could
    delete them later, and a clone speaks only for the account holding it. One made for her
    private personality in another user's account, which he uses elsewhere, stays."""
    bob = await store.upsert_user(BOB, superuser=True)
    await with_a_sample(store, engine, "Wren", alice)
    await with_a_sample(store, engine, "Lark", alice)
    await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=bob.id)
    hers, _ = await voiced_admin.clone_voice(Principal(alice), "wren")
    his, _ = await voiced_admin.clone_voice(Principal(bob), "lark")
    await voiced_admin.set_personality_voice(Principal(bob), "heron", by_hand(hers.voice_id))
    await store.import_personality(PersonalitySeed(name="Kite"), owner_user_id=bob.id)
    await voiced_admin.set_personality_voice(Principal(bob), "kite", by_hand(his.voice_id))

    await voiced_admin.delete_user_data(Principal(alice))

    assert speech.deletes == [(alice.id, hers.voice_id)]
    assert speech.accounts == {alice.id: set(), bob.id: {his.voice_id}}
    assert await recorded(engine) == {(bob.id, his.voice_id)}
