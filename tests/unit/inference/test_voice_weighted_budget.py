"""Inference's voice memory bound is weighted: short speeches share it, the largest works don't.

`TZUROT_VOICE_WORK_AT_ONCE` counts the largest works (a 40-minute speech, a clone's samples)
the process holds at once. A speech reserves its estimated seconds of that budget (at least
MIN_SPEECH_WEIGHT) before its provider is asked, so several default-length speeches run at
once with the default of one, while a 40-minute one or a clone still has the budget alone.
Reservations are granted in arrival order: a clone is not starved by a stream of short
speeches. A caller cancelled gives back what it reserved, or its place in the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.unit.inference.test_voice import RACHEL, Vault, service, vendor_client
from tests.unit.inference.test_voice_slot_before_payment import speak
from tests.unit.inference.test_voice_work_bound import with_slots
from tzurot.inference import speech_length
from tzurot.inference import voice as voice_module
from tzurot.inference.speech import VoiceSpec
from tzurot.inference.voice import (
    MIN_SPEECH_WEIGHT,
    WORK_UNIT,
    SpeechBilled,
    SpeechResult,
    VoiceService,
    _speech_weight,
)
from tzurot.inference.voice_budget import WeightedBudget
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider

SPEC = VoiceSpec("elevenlabs", RACHEL)
LONG = "A forty-minute speech. "
"""Estimated at 40 minutes here (`forty_minutes_long`); its audio stays short for the test."""
KEYS = {("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY}


@pytest.fixture
def forty_minutes_long(monkeypatch: pytest.MonkeyPatch) -> None:
    def estimate(text: str, speed: float | None) -> float:
        if text == LONG:
            return float(WORK_UNIT)
        return speech_length.estimated_seconds(text, speed)

    monkeypatch.setattr(voice_module, "estimated_seconds", estimate)


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110  # the fake has no event for its calls
            await asyncio.sleep(0.01)


async def test_short_speeches_run_together_with_the_default() -> None:
    """Three answers at once (estimated ~24 s each): all three are asked of the provider while
    the first is still streaming (one slot made them take turns), and all are posted."""
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.audio_gate = asyncio.Event()  # every speech's audio stalls mid-stream
        voice = service(http, eleven, provider, Vault(KEYS))  # the default: one unit
        events: list[list[object]] = [[], [], []]
        tasks = [asyncio.create_task(speak(voice, e, "Words to be spoken. " * 20)) for e in events]
        await until(lambda: len(eleven.tts_calls()) == 3)
        eleven.audio_gate.set()
        async with asyncio.timeout(20):
            await asyncio.gather(*tasks)
    assert eleven.peak_in_flight == 3
    assert all(isinstance(e[0], SpeechBilled) and isinstance(e[-1], SpeechResult) for e in events)


@pytest.mark.usefixtures("forty_minutes_long")
@pytest.mark.parametrize(("at_once", "together"), [(None, 1), (2, 2)])
async def test_a_forty_minute_speech_has_a_unit_to_itself(
    at_once: int | None, together: int
) -> None:
    """A speech estimated at 40 minutes reserves a whole unit: with the default, a short one
    waits for it, unasked and unbilled; with two units, the short one runs beside it."""
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.audio_gate = asyncio.Event()
        voice: VoiceService = service(http, eleven, provider, Vault(KEYS))
        if at_once is not None:
            voice = with_slots(voice, at_once)
        long_events: list[object] = []
        paid = asyncio.Event()
        long = asyncio.create_task(speak(voice, long_events, LONG, paid))
        async with asyncio.timeout(10):
            await paid.wait()
        short_events: list[object] = []
        short = asyncio.create_task(speak(voice, short_events))
        if together == 1:
            await asyncio.sleep(0.3)  # the short one would be asked by now, had it not waited
        else:
            await until(lambda: len(eleven.tts_calls()) == together)  # asked beside it
        assert len(eleven.tts_calls()) == together
        eleven.audio_gate.set()
        async with asyncio.timeout(20):
            await asyncio.gather(long, short)
    assert eleven.peak_in_flight == together
    assert isinstance(long_events[-1], SpeechResult)
    assert isinstance(short_events[-1], SpeechResult)


async def test_a_clone_waits_for_the_speeches_and_is_not_overtaken() -> None:
    """Two short speeches streaming; a clone arrives and waits for the whole unit; short
    speeches arriving after it wait behind it (first come, first served), though the budget
    could take them, so a stream of them cannot starve it; they run once it is done."""
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.audio_gate = asyncio.Event()
        voice = service(http, eleven, provider, Vault(KEYS))
        first = [asyncio.create_task(speak(voice, [])) for _ in range(2)]
        await until(lambda: len(eleven.tts_calls()) == 2)
        cloning, clone_done = asyncio.Event(), asyncio.Event()

        async def clone() -> None:
            async with voice.audio_slot("clone"):
                cloning.set()
                await clone_done.wait()

        cloner = asyncio.create_task(clone())
        await asyncio.sleep(0.1)
        later_events: list[list[object]] = [[], []]
        later = [asyncio.create_task(speak(voice, e)) for e in later_events]
        await asyncio.sleep(0.3)
        assert not cloning.is_set()  # the two speeches hold part of the unit
        assert len(eleven.tts_calls()) == 2  # the later ones wait behind the clone
        eleven.audio_gate.set()
        async with asyncio.timeout(20):
            await asyncio.gather(*first)
            await cloning.wait()
        await asyncio.sleep(0.3)
        assert len(eleven.tts_calls()) == 2  # the clone has the whole unit
        assert later_events == [[], []]
        clone_done.set()
        async with asyncio.timeout(20):
            await asyncio.gather(cloner, *later)
    assert len(eleven.tts_calls()) == 4
    assert all(isinstance(e[-1], SpeechResult) for e in later_events)


@pytest.mark.usefixtures("forty_minutes_long")
async def test_cancelled_speeches_give_back_their_weight_and_their_place() -> None:
    """A 40-minute speech queued behind a clone is cancelled (its deadline passed): the short
    one behind it is not held up by it; a speech cancelled mid-stream gives its weight back."""
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, Vault(KEYS))
        async with voice.audio_slot("clone"):
            waiting_long = asyncio.create_task(speak(voice, [], LONG))
            await asyncio.sleep(0.1)
            short_events: list[object] = []
            short = asyncio.create_task(speak(voice, short_events))
            await asyncio.sleep(0.1)
            waiting_long.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting_long
        async with asyncio.timeout(10):
            await short
        assert isinstance(short_events[-1], SpeechResult)
        assert eleven.tts_calls()[0].body["text"] != LONG

        eleven.audio_gate = asyncio.Event()
        paid = asyncio.Event()
        streaming = asyncio.create_task(speak(voice, [], LONG, paid))
        async with asyncio.timeout(10):
            await paid.wait()
        assert voice._work_slots.free == 0
        streaming.cancel()
        with pytest.raises(asyncio.CancelledError):
            await streaming
        assert voice._work_slots.free == WORK_UNIT
        eleven.audio_gate.set()  # the fake's stalled response ends


def test_a_speech_reserves_its_estimate_between_a_floor_and_a_unit() -> None:
    """The default 2,000 characters (~2 minutes) weigh the floor: 16 of them per unit; the
    longest text at the slowest speed a whole unit, never more."""
    assert _speech_weight(SPEC, "Hi.") == MIN_SPEECH_WEIGHT
    assert _speech_weight(SPEC, "x" * 2000) == MIN_SPEECH_WEIGHT
    assert _speech_weight(SPEC, "x" * 5000) == 300
    assert _speech_weight(VoiceSpec("openai", "alloy", speed=0.25), "x" * 10_000) == WORK_UNIT
    assert WORK_UNIT // MIN_SPEECH_WEIGHT == 16


async def test_the_budget_grants_in_arrival_order_and_skips_the_cancelled() -> None:
    budget = WeightedBudget(10)
    await budget.acquire(4)
    large = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    small = asyncio.create_task(budget.acquire(1))  # would fit, but arrived after `large`
    await asyncio.sleep(0)
    assert not large.done()
    assert not small.done()
    budget.release(4)
    await large
    assert not small.done()
    budget.release(10)
    await small
    assert budget.free == 9
    blocked = asyncio.create_task(budget.acquire(100))  # at most the whole budget: 10
    behind = asyncio.create_task(budget.acquire(2))
    await asyncio.sleep(0)
    blocked.cancel()
    async with asyncio.timeout(1):
        await behind  # the cancelled head no longer holds the queue
    assert budget.free == 7
