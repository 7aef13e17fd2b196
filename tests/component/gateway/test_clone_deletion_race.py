"""A voice clone and a deletion of what it clones for, at the same time, never leave a voice in
the cloner's ElevenLabs account (a slot of a paid plan) that nothing points at any more, nor a
voice row pointing at a deleted personality (clone_locks.py).

A deletion looks the clones up, deletes them from ElevenLabs, then records itself; a clone
saved after that lookup used to be left behind. Now each of the four orders is serialized:
- a clone under way when the deletion comes: the deletion is refused (CLONE_IN_PROGRESS,
  nothing deleted), and asking again once the clone is done deletes the clone too;
- a deletion under way when a clone comes: the clone is refused before ElevenLabs is asked;
- a clone that found the personality before a deletion ran and reaches its lock after: it
  sees the deletion recorded and asks ElevenLabs nothing;
- the same for a user's data deletion, which takes the voices she cloned and those of her
  private personalities.

Real Postgres for `core` (the locks are Postgres advisory locks); inference's voice RPCs are
a fake holding each user's ElevenLabs account, whose clones and deletes can be held mid-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

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
from tzurot.runtime.errors import FailedPrecondition, NotFound, PermissionDenied

from .conftest import ALICE, FakeMemory, FakeSpeech

pytestmark = pytest.mark.component

OLD_CLONE = "old-clone"
ROOT = Actor(platform_user_id="100000000000000009", display_name="Root")


async def wren_with_a_sample(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, *, public: bool = True
) -> tuple[User, Personality]:
    """Alice and her personality Wren, with one voice sample to clone from."""
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(
        PersonalitySeed(name="Wren", public=public), owner_user_id=alice.id
    )
    added = await VoiceStore(engine).add_sample(
        wren.id, alice.id, filename="a.mp3", fmt="mp3", duration_secs=1.0, data=b"ID3",
        max_samples=25,
    )  # fmt: skip
    assert added is not None
    return alice, wren


async def voice_rows(engine: AsyncEngine) -> list[tuple[str, str]]:
    """Every personality_voices row: (personality id, voice id)."""
    v = t.personality_voices.c
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(v.personality_id, v.voice_id))
    return [(str(p), str(voice)) for p, voice in rows]


async def assert_no_clone_made(speech: FakeSpeech, engine: AsyncEngine, alice: User) -> None:
    """ElevenLabs was never asked for a clone: nothing in her account, no voice row."""
    assert speech.cloned == []
    assert speech.accounts.get(alice.id, set()) == set()
    assert await voice_rows(engine) == []


async def personality_row(engine: AsyncEngine, personality_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).where(t.personalities.c.id == personality_id)
        )
    return bool(found)


@asynccontextmanager
async def clone_under_way(
    admin: Admin, speech: FakeSpeech, cloner: Principal
) -> AsyncIterator[asyncio.Task[tuple[Voice, int]]]:
    """`cloner`'s clone of Wren, held for the block once the voice is in the account and
    before ElevenLabs answered (its locks held); let go after it. The clone's task."""
    speech.clone_gate = asyncio.Event()
    cloning = asyncio.create_task(admin.clone_voice(cloner, "wren"))
    try:
        await speech.clone_made.wait()
        yield cloning
    finally:
        speech.clone_gate.set()


async def test_a_deletion_while_her_clone_is_under_way_waits_for_it_then_takes_it(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    alice, wren = await wren_with_a_sample(gateway, store, engine)
    owner = Principal(alice)
    async with clone_under_way(voiced_admin, speech, owner) as cloning:
        with pytest.raises(FailedPrecondition) as refused:
            await voiced_admin.delete_personality(owner, "wren")
        assert refused.value.reason == "CLONE_IN_PROGRESS"
        assert "being cloned" in refused.value.message
        assert await store.get_personality(wren.id) is not None  # nothing deleted
    voice, _ = await cloning
    assert await voice_rows(engine) == [(wren.id, voice.voice_id)]

    await voiced_admin.delete_personality(owner, "wren")  # asked again: the clone goes too

    assert speech.accounts[alice.id] == set()
    assert speech.deletes == [(alice.id, voice.voice_id)]
    assert await voice_rows(engine) == []
    assert not await personality_row(engine, wren.id)


@asynccontextmanager
async def held_deleting_the_old_clone(
    engine: AsyncEngine,
    speech: FakeSpeech,
    alice: User,
    wren: Personality,
    deletion: Coroutine[Any, Any, object],
) -> AsyncIterator[None]:
    """Wren's former clone, made by Alice, is in her ElevenLabs account; `deletion` starts
    and is held for the block while it deletes that clone there (its locks held, nothing
    recorded yet); let go after it, and finished."""
    await VoiceStore(engine).put_voice(
        wren.id, Voice(provider="elevenlabs", voice_id=OLD_CLONE), cloned_by=alice.id
    )
    speech.accounts[alice.id] = {OLD_CLONE}
    gate = speech.delete_gate = asyncio.Event()
    deleting = asyncio.create_task(deletion)
    await speech.delete_started.wait()
    try:
        yield
    finally:
        gate.set()
    await deleting


async def test_a_clone_while_the_deletion_is_under_way_is_refused_before_it_is_made(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    """The deletion is deleting Wren's former clone from her account (not recorded yet): a
    clone asked meanwhile must not make a voice the deletion will never see."""
    alice, wren = await wren_with_a_sample(gateway, store, engine)
    owner = Principal(alice)
    deletion = voiced_admin.delete_personality(owner, "wren")
    async with held_deleting_the_old_clone(engine, speech, alice, wren, deletion):
        # Told it is gone (it is being deleted), not to wait for "a clone" and try again.
        with pytest.raises(NotFound) as refused:
            await voiced_admin.clone_voice(owner, "wren")
        assert refused.value.reason == "PERSONALITY_NOT_FOUND"

    await assert_no_clone_made(speech, engine, alice)
    assert not await personality_row(engine, wren.id)


async def test_a_second_deletion_while_the_first_is_under_way_is_told_so_not_a_clone(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    """A double click on delete: the first deletion is deleting Wren's clone at ElevenLabs
    (its locks held); the second is refused as a deletion under way, and the first finishes."""
    alice, wren = await wren_with_a_sample(gateway, store, engine)
    owner = Principal(alice)
    deletion = voiced_admin.delete_personality(owner, "wren")
    async with held_deleting_the_old_clone(engine, speech, alice, wren, deletion):
        with pytest.raises(FailedPrecondition) as refused:
            await voiced_admin.delete_personality(owner, "wren")
        assert refused.value.reason == "DELETION_IN_PROGRESS"
        assert "being deleted by another request" in refused.value.message
        assert "cloned" not in refused.value.message

    assert speech.deletes == [(alice.id, OLD_CLONE)]  # once
    assert not await personality_row(engine, wren.id)


async def test_her_data_deletion_while_her_personality_is_being_deleted_is_told_so(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    """Her private Wren's deletion holds its locks (deleting its clone at ElevenLabs) when she
    asks for her data's deletion: refused as a deletion under way, nothing of hers deleted;
    asked again afterwards, it runs."""
    alice, wren = await wren_with_a_sample(gateway, store, engine, public=False)
    owner = Principal(alice)
    deletion = voiced_admin.delete_personality(owner, "wren")
    async with held_deleting_the_old_clone(engine, speech, alice, wren, deletion):
        with pytest.raises(FailedPrecondition) as refused:
            await voiced_admin.delete_user_data(owner)
        assert refused.value.reason == "DELETION_IN_PROGRESS"
        assert "another request is deleting your data" in refused.value.message
        async with engine.connect() as conn:
            marked = await conn.scalar(
                sa.select(t.users.c.deletion_requested_at).where(t.users.c.id == alice.id)
            )
        assert marked is None  # her deletion was not recorded

    await voiced_admin.delete_user_data(owner)
    assert speech.deletes == [(alice.id, OLD_CLONE)]


def deletion_paused_after_lookup(
    gateway: Gateway,
    memory: FakeMemory,
    monkeypatch: pytest.MonkeyPatch,
    delete: Callable[[], Coroutine[Any, Any, object]],
) -> Callable[[], Awaitable[None]]:
    """The next personality lookup finds it, then `delete` starts and runs until it asks memory
    to forget a personality (its clones deleted and the deletion recorded by then) before the
    caller goes on: a clone that found the personality, then lost the race to its lock, while
    the deletion is still under way (another replica's catalog may know the personality for
    seconds more). Returns what lets the deletion finish."""
    lookup = gateway.find_personality_for
    forget = memory.forget_personality
    forgetting, resume = asyncio.Event(), asyncio.Event()
    started: list[asyncio.Task[object]] = []

    async def slow_forget(personality_id: str) -> int:
        forgetting.set()
        await resume.wait()
        return await forget(personality_id)

    async def found_then_deleting(*args: Any, **kwargs: Any) -> Personality | None:
        found = await lookup(*args, **kwargs)
        if not started:
            started.append(asyncio.create_task(delete()))
            await forgetting.wait()
        return found

    async def finish() -> None:
        resume.set()
        if started:
            await started[0]

    monkeypatch.setattr(memory, "forget_personality", slow_forget)
    monkeypatch.setattr(gateway, "find_personality_for", found_then_deleting)
    return finish


async def test_a_clone_that_found_the_personality_before_its_deletion_asks_elevenlabs_nothing(
    voiced_admin: Admin,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    memory: FakeMemory,
) -> None:
    alice, wren = await wren_with_a_sample(gateway, store, engine)
    finish = deletion_paused_after_lookup(
        gateway,
        memory,
        monkeypatch,
        lambda: voiced_admin.delete_personality(Principal(None), "wren"),
    )
    try:
        with pytest.raises(NotFound) as refused:
            await voiced_admin.clone_voice(Principal(alice), "wren")
        assert refused.value.reason == "PERSONALITY_NOT_FOUND"
    finally:
        await finish()

    await assert_no_clone_made(speech, engine, alice)
    assert not await personality_row(engine, wren.id)


async def test_her_data_deletion_while_her_clone_is_under_way_waits_for_it_then_takes_it(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    alice, _ = await wren_with_a_sample(gateway, store, engine)
    async with clone_under_way(voiced_admin, speech, Principal(alice)) as cloning:
        with pytest.raises(FailedPrecondition) as refused:
            await voiced_admin.delete_user_data(Principal(alice))
        assert refused.value.reason == "CLONE_IN_PROGRESS"
    voice, _ = await cloning

    await voiced_admin.delete_user_data(Principal(alice))  # asked again: the clone goes too

    assert speech.deletes == [(alice.id, voice.voice_id)]
    assert speech.accounts[alice.id] == set()
    assert await voice_rows(engine) == []


async def test_a_clone_that_found_her_before_her_data_deletion_asks_elevenlabs_nothing(
    voiced_admin: Admin,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    memory: FakeMemory,
) -> None:
    alice, _ = await wren_with_a_sample(gateway, store, engine, public=False)
    finish = deletion_paused_after_lookup(
        gateway, memory, monkeypatch, lambda: voiced_admin.delete_user_data(Principal(alice))
    )
    try:
        with pytest.raises(PermissionDenied) as refused:
            await voiced_admin.clone_voice(Principal(alice), "wren")
        assert refused.value.reason == "USER_DATA_DELETING"
    finally:
        await finish()

    await assert_no_clone_made(speech, engine, alice)


async def test_her_data_deletion_takes_a_voice_a_superuser_is_cloning_for_her_private_one(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
) -> None:
    """A superuser clones a voice for her private personality, with his own key: her data
    deletion deletes that personality, so it waits for the clone and deletes it from his
    account, as deleting the personality itself would."""
    alice, wren = await wren_with_a_sample(gateway, store, engine, public=False)
    root = await store.upsert_user(ROOT, superuser=True)
    async with clone_under_way(voiced_admin, speech, Principal(root)) as cloning:
        with pytest.raises(FailedPrecondition) as refused:
            await voiced_admin.delete_user_data(Principal(alice))
        assert refused.value.reason == "CLONE_IN_PROGRESS"
    voice, _ = await cloning

    await voiced_admin.delete_user_data(Principal(alice))

    assert speech.deletes == [(root.id, voice.voice_id)]
    assert speech.accounts[root.id] == set()
    assert await voice_rows(engine) == []
    assert not await personality_row(engine, wren.id)
