"""Deleting a personality also deletes the clones marked for it that voice_clones never recorded
(their answer lost after ElevenLabs made them), from its owner's and its cloners' accounts
(admin/deletions.py `_delete_lost_clones`); a voice id another personality stores (set by
hand) is kept, and so is a clone marked for another personality. Best effort: an account
that cannot be listed leaves them, and the personality goes all the same.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake (each user's account,
each clone's mark).
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import Unavailable

from .conftest import ALICE, FakeSpeech

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


async def test_an_account_that_cannot_be_listed_leaves_them_and_the_personality_goes(
    voiced_admin: Admin, gateway: Gateway, *, store: GatewayStore, speech: FakeSpeech,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(PersonalitySeed(name="Wren"), owner_user_id=alice.id)
    speech.accounts[alice.id] = {"lost-1"}
    speech.marks["lost-1"] = wren.id
    speech.error = Unavailable("elevenlabs could not be reached")

    await voiced_admin.delete_personality(Principal(alice), "wren")

    assert speech.deletes == []
    assert speech.accounts[alice.id] == {"lost-1"}
    assert await store.get_personality(wren.id) is None
