"""Voice clones queued for the gateway's one document slot hold no Postgres connection.

A clone's locks (clone_locks.py) live on a pool connection of their own, held for the whole
clone. Taken before the slot, each clone waiting behind a shapes.inc import or another
clone held one: 14 of them left the 15-connection pool nothing, and every reply stalled on it.
The slot comes first now, the locks only once it is ours; it is given back as soon as the
samples are sent. A double click is still answered at once (CLONE_IN_PROGRESS), even while
the first click waits for the slot.

Real Postgres for `core`; inference's voice RPCs are the conftest's fake.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.clone_locks import CLONE_IN_PROGRESS
from tzurot.gateway.document_work import document_slot, run_document_work
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import FailedPrecondition
from tzurot.testing.waits import until

from .conftest import ALICE, FakeSpeech
from .test_voice_clone_slot import with_a_sample

pytestmark = pytest.mark.component

QUEUED = 6


class HeldDocument:
    """A document being read on the slot's worker thread until `release`."""

    def __init__(self) -> None:
        self.started, self.done = threading.Event(), threading.Event()

    def read(self) -> str:
        self.started.set()
        self.done.wait(10)
        return "read"

    def release(self) -> None:
        self.done.set()


@pytest.fixture
def document() -> Iterator[HeldDocument]:
    held = HeldDocument()
    yield held
    held.release()  # never a thread left waiting


@pytest.fixture
def at_the_slot(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry for each clone that looked its personality up and now asks for the slot:
    on a loaded machine they get there later than any fixed sleep."""
    asked: list[None] = []

    def asking() -> Any:
        asked.append(None)
        return document_slot()

    monkeypatch.setattr("tzurot.gateway.admin.voice.document_slot", asking)
    return asked


def checked_out(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)  # the engine's (tzurot.db.engine)
    return pool.checkedout()


async def test_clones_waiting_for_the_slot_hold_no_connection(
    voiced_admin: Admin, gateway: Gateway, document: HeldDocument, at_the_slot: list[None], *,
    store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech,
) -> None:  # fmt: skip
    """Clones of six personalities queued behind a document being read: none holds a pool
    connection meanwhile, a reply's statement runs at once, and each clone is made after."""
    alice = await gateway.user(ALICE)
    names = [(await with_a_sample(store, engine, f"Queued{n}", alice)).slug for n in range(QUEUED)]
    reading = asyncio.create_task(run_document_work(document.read))
    assert await asyncio.to_thread(document.started.wait, 5)
    before = checked_out(engine)
    clones = [
        asyncio.create_task(voiced_admin.clone_voice(Principal(alice), name)) for name in names
    ]
    await until(lambda: len(at_the_slot) == QUEUED, "every clone asked for the slot")
    assert not any(clone.done() for clone in clones)
    assert checked_out(engine) == before
    async with asyncio.timeout(2), engine.connect() as conn:  # a reply's statement
        assert await conn.scalar(sa.select(1)) == 1
    document.release()
    assert await reading == "read"
    made = await asyncio.gather(*clones)
    assert len({voice.voice_id for voice, _ in made}) == QUEUED
    assert len(speech.cloned) == QUEUED
    assert checked_out(engine) == before


async def test_a_double_click_while_the_first_waits_for_the_slot_is_told_at_once(
    voiced_admin: Admin, gateway: Gateway, document: HeldDocument, at_the_slot: list[None], *,
    store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech,
) -> None:  # fmt: skip
    """The second click is answered CLONE_IN_PROGRESS without waiting for the slot, and the
    voice is cloned once."""
    alice = await gateway.user(ALICE)
    wren = await with_a_sample(store, engine, "Wren", alice)
    reading = asyncio.create_task(run_document_work(document.read))
    assert await asyncio.to_thread(document.started.wait, 5)
    first = asyncio.create_task(voiced_admin.clone_voice(Principal(alice), wren.slug))
    await until(lambda: at_the_slot, "the first click asked for the slot")
    with pytest.raises(FailedPrecondition) as second:
        async with asyncio.timeout(2):
            await voiced_admin.clone_voice(Principal(alice), wren.slug)
    assert second.value.reason == CLONE_IN_PROGRESS
    document.release()
    assert await reading == "read"
    voice, _ = await first
    assert voice.voice_id
    assert len(speech.cloned) == 1


async def test_the_slot_is_given_back_once_the_samples_are_sent(
    voiced_admin: Admin, gateway: Gateway, monkeypatch: pytest.MonkeyPatch, *,
    store: GatewayStore, engine: AsyncEngine,
) -> None:  # fmt: skip
    """While the clone stores its voice (still under its locks), a document is read: the
    samples are gone by then, the slot no longer the clone's."""
    alice = await gateway.user(ALICE)
    wren = await with_a_sample(store, engine, "Wren", alice)
    storing, go_on = asyncio.Event(), asyncio.Event()
    put = VoiceStore.put_voice

    async def put_voice(self: VoiceStore, personality_id: str, voice: Voice, **kwargs: Any) -> None:
        storing.set()
        await go_on.wait()
        await put(self, personality_id, voice, **kwargs)

    monkeypatch.setattr(VoiceStore, "put_voice", put_voice)
    clone = asyncio.create_task(voiced_admin.clone_voice(Principal(alice), wren.slug))
    async with asyncio.timeout(5):
        await storing.wait()
        assert await run_document_work(lambda: "read") == "read"
    go_on.set()
    voice, samples = await clone
    assert voice.voice_id
    assert samples == 1
