"""Deleting a personality deletes the voice cloned for it from the ElevenLabs account it was
cloned into, with the cloner's key, before the deletion is recorded (admin/deletions.py
`_delete_clones`, which a user's data deletion shares). ElevenLabs unreachable fails the
request with nothing deleted, so asking again finishes it; a clone the key cannot delete (a
rejected key, or one scoped without the permission) stays in that account, logged, and the
personality is deleted all the same; a key ElevenLabs rejects turns inactive in the wallet, as
in any other use, while a key that only lacks a permission stays active. A voice set by hand
is nobody's clone: it is never deleted from anyone's account.

Real Postgres for `core`; inference's voice RPCs are a fake holding each user's ElevenLabs
account (the voices it has) that records every DeleteVoice.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition, Unavailable

from .conftest import ALICE, FakeKeyVault, FakeMemory, FakeSpeech

pytestmark = pytest.mark.component

CLONE = "cloned-wren-voice"
RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a premade voice, set by hand


async def cloned_by_alice(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech
) -> tuple[str, Personality]:
    """Alice's id and her public personality Wren, whose voice she cloned (in her account)."""
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(
        PersonalitySeed(name="Wren", public=True), owner_user_id=alice.id
    )
    voice = Voice(provider="elevenlabs", voice_id=CLONE)
    await VoiceStore(engine).put_voice(wren.id, voice, cloned_by=alice.id)
    speech.accounts[alice.id] = {CLONE}
    return alice.id, wren


async def rows_of(engine: AsyncEngine, personality_id: str) -> dict[str, object]:
    """Its row (and whether its deletion is recorded) and its voice row."""
    async with engine.connect() as conn:
        marked = await conn.scalar(
            sa.select(t.personalities.c.deletion_requested_at.is_not(None)).where(
                t.personalities.c.id == personality_id
            )
        )
        voices = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(t.personality_voices)
            .where(t.personality_voices.c.personality_id == personality_id)
        )
    return {"personality": marked is not None, "deletion recorded": bool(marked), "voice": voices}


async def test_the_clone_is_deleted_from_the_cloners_account_with_her_key(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    memory: FakeMemory,
) -> None:
    alice, wren = await cloned_by_alice(gateway, store, engine, speech)
    # Another personality whose voice was set by hand: nobody's clone, never deleted.
    heron, _ = await store.import_personality(PersonalitySeed(name="Heron"), owner_user_id=None)
    await VoiceStore(engine).put_voice(heron.id, Voice(provider="elevenlabs", voice_id=RACHEL))

    # The operator deletes it (`tzurot admin personalities delete`): her key, not the actor's.
    await voiced_admin.delete_personality(Principal(None), "wren")
    await voiced_admin.delete_personality(Principal(None), "heron")

    assert speech.deletes == [(alice, CLONE)]
    assert speech.accounts[alice] == set()
    assert memory.forgotten_personalities == [wren.id, heron.id]
    assert await rows_of(engine, wren.id) == {
        "personality": False,
        "deletion recorded": False,
        "voice": 0,
    }


async def test_elevenlabs_unreachable_fails_the_deletion_with_nothing_deleted(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    memory: FakeMemory,
) -> None:
    alice, wren = await cloned_by_alice(gateway, store, engine, speech)
    owner = Principal(await gateway.user(ALICE))
    speech.error = Unavailable("ElevenLabs cannot be reached")

    with pytest.raises(Unavailable, match="nothing was deleted") as refused:
        await voiced_admin.delete_personality(owner, "wren")
    assert refused.value.reason == "CLONE_DELETION_UNAVAILABLE"

    # Nothing touched: not recorded (no sweep finishes it), still served, memory asked nothing.
    assert await rows_of(engine, wren.id) == {
        "personality": True,
        "deletion recorded": False,
        "voice": 1,
    }
    assert await store.get_personality(wren.id) is not None
    assert memory.forgotten_personalities == []
    assert speech.accounts[alice] == {CLONE}
    assert await voiced_admin.finish_pending_deletions() == 0

    speech.error = None  # asking again finishes it
    await voiced_admin.delete_personality(owner, "wren")
    assert speech.accounts[alice] == set()
    assert (await rows_of(engine, wren.id))["personality"] is False


async def test_a_clone_her_key_cannot_delete_stays_and_the_personality_goes(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
) -> None:
    """Her key revoked in ElevenLabs (401 `invalid_api_key`): the clone stays in her account,
    the personality goes, and `/wallet list` says the key is inactive, as after a refused
    speech or clone."""
    alice, wren = await cloned_by_alice(gateway, store, engine, speech)
    speech.error = FailedPrecondition(
        "ElevenLabs refused the key",
        reason="INVALID_API_KEY",
        metadata={"provider": "elevenlabs", "key_source": "user"},
    )

    with capture_logs() as logs:
        # The operator deletes it: her key is the one refused, so hers turns inactive.
        await voiced_admin.delete_personality(Principal(None), "wren")

    assert speech.deletes == [(alice, CLONE)]
    assert speech.accounts[alice] == {CLONE}  # left in her account, which she controls
    assert memory.forgotten_personalities == [wren.id]
    assert (await rows_of(engine, wren.id))["personality"] is False
    kept = [e for e in logs if e["event"].endswith("clone_kept")]
    assert kept == [
        {
            "event": "deletion.clone_kept",
            "log_level": "warning",
            "personality_id": wren.id,
            "reason": "INVALID_API_KEY",
        }
    ]
    assert [(u.user_id, u.provider, u.rejected) for u in keyvault.uses] == [
        (alice, "elevenlabs", True)
    ]


async def test_a_key_lacking_the_permission_to_delete_stays_active(
    voiced_admin: Admin,
    gateway: Gateway,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    speech: FakeSpeech,
    keyvault: FakeKeyVault,
) -> None:
    """Her key is scoped without `voices_write` (ElevenLabs' 401 `missing_permissions`): the
    clone stays in her account, the personality goes, and the key is not marked inactive:
    it is a working key."""
    alice, wren = await cloned_by_alice(gateway, store, engine, speech)
    speech.error = FailedPrecondition(
        "your elevenlabs key lacks the `voices_write` permission this needs",
        reason="KEY_MISSING_PERMISSION",
        metadata={"provider": "elevenlabs"},
    )

    with capture_logs() as logs:
        await voiced_admin.delete_personality(Principal(await gateway.user(ALICE)), "wren")

    assert speech.accounts[alice] == {CLONE}
    assert (await rows_of(engine, wren.id))["personality"] is False
    assert [e["reason"] for e in logs if e["event"] == "deletion.clone_kept"] == [
        "KEY_MISSING_PERMISSION"
    ]
    await gateway.key_uses.flush()
    assert [u for u in keyvault.uses if u.rejected] == []
