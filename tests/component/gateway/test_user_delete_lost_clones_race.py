"""A user's data deletion and a personality's deletion that keeps her as a cloner, run at once:
her lost clones of that personality are still deleted from her ElevenLabs account, with her key,
before it goes; and her deletion gives up on ElevenLabs a day after she asked, whatever the
marks of her personalities say.

Before, her deletion looked once for the personalities under deletion that kept her as a cloner
(`deletion_cloners`), then deleted her keys. A personality's deletion marked after that look
(it looked her recorded clone up before her deletion deleted it, or her clone stayed recorded)
listed her account only later, with no key of hers left: her lost clones of it stayed in her
account for good. Now her key-write lock keeps them apart (store/deletions.py): a deletion holds
its cloners' locks from its lookup to its mark, and her keys go under hers after a last look.

And the day her deletion waits for ElevenLabs was counted from each personality's mark: one of
her private personalities left unmarked (made private after her mark) counted 0 seconds for good,
so her deletion, and her key, waited on ElevenLabs for ever.

Real Postgres for `core` (the locks are Postgres advisory locks); inference's voice RPCs are the
conftest's fake, which here lists an account only while its owner's key is in keyvault, as
inference does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.deletions import LOST_CLONES_RETRY_SECONDS
from tzurot.gateway.domain import Actor, Personality, User
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition, PermissionDenied, Unavailable

from .conftest import ALICE, FakeKeyVault, FakeMemory, FakeSpeech
from .test_user_delete_lost_clones import (
    BOB,
    elevenlabs_key,
    her_lost_clone_with_elevenlabs_away,
    row_count,
    with_a_sample,
)

pytestmark = pytest.mark.component

CAROL = Actor(platform_user_id="100000000000000003", display_name="Carol")
RACE_SECONDS = 1.0
"""How long the test lets Bob's deletion run while Wren's request is held: without the locks,
his deletion runs to its end in that time."""


def listed_only_with_a_key(speech: FakeSpeech, keyvault: FakeKeyVault) -> None:
    """The fake lists an account only while its owner's ElevenLabs key is in keyvault; else it
    refuses as inference does for good (not retried: the account is skipped, logged)."""
    listing = speech.marked_clones

    async def marked_clones(user_id: str, personality_id: str) -> list[str]:
        if (user_id, "elevenlabs") not in keyvault.keys:
            raise FailedPrecondition("no ElevenLabs key stored", reason="KEY_NOT_FOUND")
        return await listing(user_id, personality_id)

    speech.marked_clones = marked_clones  # type: ignore[method-assign]  # a stricter fake


async def wren_cloned_by(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech
) -> tuple[User, User, User, Personality]:
    """Alice's public Wren, cloned by Carol (v1-carol, recorded first) and by Bob (v2-bob),
    its voice since set by hand to a premade one; and a clone of Bob's marked for Wren that
    nothing records (bob-lost)."""
    alice, bob, carol = [await gateway.user(a) for a in (ALICE, BOB, CAROL)]
    wren = await with_a_sample(store, engine, "Wren", alice, public=True)
    voices = VoiceStore(engine)
    for cloner, voice_id in ((carol, "v1-carol"), (bob, "v2-bob")):
        await voices.put_voice(
            wren.id, Voice(provider="elevenlabs", voice_id=voice_id), cloned_by=cloner.id
        )
    await voices.put_voice(wren.id, Voice(provider="elevenlabs", voice_id="premade-1"))
    speech.accounts.update({carol.id: {"v1-carol"}, bob.id: {"v2-bob", "bob-lost"}})
    speech.marks.update({"v1-carol": wren.id, "v2-bob": wren.id, "bob-lost": wren.id})
    return alice, bob, carol, wren


async def test_a_personality_deletion_that_found_him_a_cloner_is_marked_before_his_keys_go(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    """Wren's request looked its clones up (Bob's among them) and is held deleting Carol's at
    ElevenLabs; Bob deletes his data meanwhile. Before, his deletion ran to its end (his
    recorded clone deleted, no deletion keeping him yet, his keys gone), and Wren's, marked
    after, found no key of his for bob-lost. Now his deletion waits for Wren's mark."""
    alice, bob, carol, _ = await wren_cloned_by(gateway, store, engine, speech)
    await elevenlabs_key(keyvault, bob)
    await elevenlabs_key(keyvault, carol)
    listed_only_with_a_key(speech, keyvault)
    speech.delete_gate = asyncio.Event()  # the first delete (Wren's, of v1-carol) is held

    wrens = asyncio.create_task(voiced_admin.delete_personality(Principal(alice), "wren"))
    await asyncio.wait_for(speech.delete_started.wait(), 10)
    bobs = asyncio.create_task(voiced_admin.delete_user_data(Principal(bob)))
    await asyncio.wait({bobs}, timeout=RACE_SECONDS)
    speech.delete_gate.set()
    await asyncio.wait_for(asyncio.gather(wrens, bobs), 30)  # and no deadlock

    assert speech.accounts[bob.id] == set()
    assert speech.accounts[carol.id] == set()
    assert await keyvault.list_keys(bob.id) == []
    assert not await row_count(engine, t.users, bob.id)


async def test_deletions_marked_after_his_look_are_listed_before_his_keys_go(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault, memory: FakeMemory,
) -> None:  # fmt: skip
    """ElevenLabs refused his deletion's deletes of v2-bob and heron-bob (kept, still
    recorded: Bob stays a cloner of Wren and of Heron). Between his deletion's look for the
    deletions keeping him and his keys' going, Wren is deleted (memory away: its sweep
    finishes it later) and keeps him; while his deletion lists his account for Wren, so is
    Heron. Before, his keys went after one look, and their sweeps found no key of his for
    bob-lost and heron-lost."""
    alice, bob, _, wren = await wren_cloned_by(gateway, store, engine, speech)
    heron = await with_a_sample(store, engine, "Heron", alice, public=True)
    voices = VoiceStore(engine)
    await voices.put_voice(
        heron.id, Voice(provider="elevenlabs", voice_id="heron-bob"), cloned_by=bob.id
    )
    speech.accounts[bob.id] |= {"heron-bob", "heron-lost"}
    speech.marks.update({"heron-bob": heron.id, "heron-lost": heron.id})
    await elevenlabs_key(keyvault, bob)
    listed_only_with_a_key(speech, keyvault)
    refused: list[str] = []
    deleting, listing = speech.delete_voice, speech.marked_clones

    async def delete_voice(user_id: str, voice_id: str) -> bool:
        if voice_id in {"v2-bob", "heron-bob"} and voice_id not in refused:
            refused.append(voice_id)
            raise PermissionDenied("missing_permissions", reason="KEY_MISSING_PERMISSION")
        return await deleting(user_id, voice_id)

    async def deleted_meanwhile(slug: str) -> None:
        memory.error = Unavailable("memory is restarting")
        with pytest.raises(FailedPrecondition) as pending:
            await voiced_admin.delete_personality(Principal(alice), slug)
        assert pending.value.reason == "DELETION_PENDING"
        memory.error = None

    async def marked_clones(user_id: str, personality_id: str) -> list[str]:
        if (user_id, personality_id) == (bob.id, wren.id):
            await deleted_meanwhile("heron")
        return await listing(user_id, personality_id)

    speech.delete_voice = delete_voice  # type: ignore[method-assign]  # refuses once
    speech.marked_clones = marked_clones  # type: ignore[method-assign]  # Heron meanwhile
    db = voiced_admin._db  # the step between his look and his keys, held
    content = db.delete_user_content

    async def wren_deleted_meanwhile(user_id: str, now: datetime | None = None) -> int:
        await deleted_meanwhile("wren")
        return await content(user_id, now)

    db.delete_user_content = wren_deleted_meanwhile  # type: ignore[method-assign]  # held

    await asyncio.wait_for(voiced_admin.delete_user_data(Principal(bob)), 30)

    assert sorted(refused) == ["heron-bob", "v2-bob"]
    assert speech.accounts[bob.id] == set()
    assert await keyvault.list_keys(bob.id) == []
    assert await row_count(engine, t.personalities, wren.id)  # still their sweeps' to finish
    assert await row_count(engine, t.personalities, heron.id)


async def test_a_personality_deletion_under_way_when_his_keys_go_is_waited_for(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    """ElevenLabs refused his deletion's delete of v2-bob (kept: Bob stays a cloner of Wren).
    Once his deletion is marked, Wren's request finds him a cloner and is held deleting v2-bob
    at ElevenLabs. Before, his deletion looked (Wren not marked yet) and his keys went
    meanwhile; now they wait for Wren's mark, and his look finds it."""
    alice, bob, _, _ = await wren_cloned_by(gateway, store, engine, speech)
    await elevenlabs_key(keyvault, bob)
    listed_only_with_a_key(speech, keyvault)
    deleting = speech.delete_voice
    refused: list[str] = []

    async def delete_voice(user_id: str, voice_id: str) -> bool:
        if voice_id == "v2-bob" and not refused:
            refused.append(voice_id)
            raise PermissionDenied("missing_permissions", reason="KEY_MISSING_PERMISSION")
        return await deleting(user_id, voice_id)

    speech.delete_voice = delete_voice  # type: ignore[method-assign]  # refuses once
    db = voiced_admin._db  # the step before his keys, held
    content = db.delete_user_content
    gate = asyncio.Event()
    wrens: list[asyncio.Task[None]] = []

    async def wren_held_meanwhile(user_id: str, now: datetime | None = None) -> int:
        speech.delete_started, speech.delete_gate = asyncio.Event(), gate
        wrens.append(asyncio.create_task(voiced_admin.delete_personality(Principal(alice), "wren")))
        await asyncio.wait_for(speech.delete_started.wait(), 10)  # it holds v2-bob's delete
        asyncio.get_running_loop().call_later(RACE_SECONDS, gate.set)
        return await content(user_id, now)

    db.delete_user_content = wren_held_meanwhile  # type: ignore[method-assign]  # held

    await asyncio.wait_for(voiced_admin.delete_user_data(Principal(bob)), 30)
    await asyncio.wait_for(wrens[0], 30)

    assert speech.accounts[bob.id] == set()
    assert await keyvault.list_keys(bob.id) == []


async def test_her_deletion_gives_up_a_day_after_she_asked_even_on_a_personality_not_marked(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, engine: AsyncEngine,
    speech: FakeSpeech, keyvault: FakeKeyVault,
) -> None:  # fmt: skip
    """Wren, private, is not marked (made private after her mark, say): its own deletion
    age is 0. Her deletion asked more than a day ago gives up on its lost clones all the same,
    and her key goes."""
    alice, wren = await her_lost_clone_with_elevenlabs_away(
        gateway, store, engine, speech, keyvault
    )
    with pytest.raises(FailedPrecondition):
        await voiced_admin.delete_user_data(Principal(alice))
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.personalities)
            .where(t.personalities.c.id == wren.id)
            .values(deletion_requested_at=None, deletion_lease_until=None)
        )
        await conn.execute(
            sa.update(t.users)
            .where(t.users.c.id == alice.id)
            .values(
                deletion_requested_at=sa.func.now()
                - sa.func.make_interval(0, 0, 0, 0, 0, 0, LOST_CLONES_RETRY_SECONDS + 60)
            )
        )

    assert await voiced_admin.finish_pending_deletions() == 1

    assert speech.accounts[alice.id] == {"lost-1"}  # left, logged
    assert await keyvault.list_keys(alice.id) == []
    assert not await row_count(engine, t.users, alice.id)
