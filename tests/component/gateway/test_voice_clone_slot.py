"""A voice clone holds its samples (up to 25 of 10 MiB) from reading them to inference's
answer, in document_work's one slot: two maximal clones at once took the gateway to a 667 MiB
peak (its limit is 512Mi), one at a time 428 MiB. The user sees the same, a little later.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.document_work import run_document_work
from tzurot.gateway.domain import Personality, User
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice_store import VoiceStore

from .conftest import ALICE, FakeSpeech

pytestmark = pytest.mark.component


class Holding:
    """Clones holding their samples now (from sample_data to the clone's answer), the most."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.started = asyncio.Event()

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        self.started.set()

    def leave(self) -> None:
        self.now -= 1


@pytest.fixture
def holding(monkeypatch: pytest.MonkeyPatch, speech: FakeSpeech) -> Holding:
    gauge = Holding()
    read = VoiceStore.sample_data
    clone = speech.clone_voice

    async def sample_data(self: VoiceStore, personality_id: str) -> list[tuple[str, bytes]]:
        gauge.enter()
        return await read(self, personality_id)

    async def clone_voice(
        user_id: str, name: str, description: str, samples: Sequence[tuple[str, bytes]],
        **kwargs: Any,
    ) -> str:  # fmt: skip
        try:
            await asyncio.sleep(0.2)  # the upload
            return await clone(user_id, name, description, samples, **kwargs)
        finally:
            gauge.leave()

    monkeypatch.setattr(VoiceStore, "sample_data", sample_data)
    monkeypatch.setattr(speech, "clone_voice", clone_voice)
    return gauge


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


async def test_clones_hold_their_samples_one_at_a_time_and_each_is_made(
    voiced_admin: Admin, gateway: Gateway, holding: Holding, *, store: GatewayStore,
    engine: AsyncEngine, speech: FakeSpeech,
) -> None:  # fmt: skip
    alice = await gateway.user(ALICE)
    names = [(await with_a_sample(store, engine, n, alice)).slug for n in ("Wren", "Heron", "Ibis")]
    made = await asyncio.gather(*(voiced_admin.clone_voice(Principal(alice), n) for n in names))
    assert len({voice.voice_id for voice, _ in made}) == 3
    assert len(speech.cloned) == 3
    assert holding.most == 1


async def test_a_clone_waits_for_the_document_being_read(
    voiced_admin: Admin, gateway: Gateway, holding: Holding, *, store: GatewayStore,
    engine: AsyncEngine,
) -> None:  # fmt: skip
    """A shapes.inc import being read (hundreds of MB) and a clone's samples are never held
    together: the clone reads its samples once the document is done."""
    alice = await gateway.user(ALICE)
    wren = await with_a_sample(store, engine, "Wren", alice)
    started, release = threading.Event(), threading.Event()

    def read_document() -> str:
        started.set()
        release.wait(5)
        return "read"

    document = asyncio.create_task(run_document_work(read_document))
    assert await asyncio.to_thread(started.wait, 5)
    clone = asyncio.create_task(voiced_admin.clone_voice(Principal(alice), wren.slug))
    await asyncio.sleep(0.3)
    assert not holding.started.is_set()  # waiting for the slot, its samples not read
    release.set()
    assert await document == "read"
    voice, _ = await clone
    assert voice.voice_id
    assert holding.most == 1
