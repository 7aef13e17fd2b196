"""A speech waits for its voice work slot before its provider is asked, never after.

The slot (`TZUROT_VOICE_WORK_AT_ONCE`, one by default) bounds the memory of conversions and
clone uploads. A speech that waited for it only once paid (SpeechBilled sent, the provider's
audio in hand) could see its caller's deadline pass behind a clone upload or a long
conversion: paid, and no voice message. So a speech takes the slot before the request and
keeps it through the provider's audio and the conversion; a deadline passing while it waits
costs the user nothing, and a call cancelled at any point gives the slot back.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.inference.test_voice import RACHEL, Vault, service, until_failure, vendor_client
from tzurot.inference import voice as voice_module
from tzurot.inference.speech import VoiceSpec
from tzurot.inference.voice import WORK_UNIT, SpeechBilled, SpeechResult, VoiceService
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider

SPEC = VoiceSpec("elevenlabs", RACHEL)


async def speak(
    voice: VoiceService,
    events: list[object],
    text: str = "Hello there.",
    billed: asyncio.Event | None = None,
) -> None:
    async for event in voice.synthesize("u1", SPEC, text):
        events.append(event)
        if billed is not None and isinstance(event, SpeechBilled):
            billed.set()


async def test_a_deadline_passing_while_the_slot_is_busy_bills_nothing() -> None:
    """The reviewer's case: a clone upload holds the slot, the speech's deadline passes
    while it waits. Nothing was asked of ElevenLabs, nothing billed, no SpeechBilled sent;
    once the clone is done, the next speech is made."""
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)  # one slot, the default
        events: list[object] = []
        async with voice.audio_slot("clone"):  # a clone upload in progress
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):  # the caller's deadline
                    await speak(voice, events)
        assert events == []
        assert eleven.tts_calls() == []
        assert eleven.characters_used == 0
        after, failed = await until_failure(voice, SPEC, "Hello there.")
    assert failed is None
    assert isinstance(after[0], SpeechBilled)
    assert isinstance(after[-1], SpeechResult)


async def test_a_speech_holds_its_slot_from_its_request_and_a_cancel_frees_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While one of the largest speeches (estimated at a whole unit) is still streaming, a
    second one sends no request (it waits, unbilled); the first cancelled mid-stream (paid:
    its SpeechBilled was sent) gives its weight back, and the second is made."""
    monkeypatch.setattr(voice_module, "estimated_seconds", lambda *_: float(WORK_UNIT))
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.audio_gate = asyncio.Event()  # the first speech's audio stalls mid-stream
        voice = service(http, eleven, provider, vault)
        first_events: list[object] = []
        paid = asyncio.Event()
        first = asyncio.create_task(speak(voice, first_events, "Words to be spoken. " * 20, paid))
        async with asyncio.timeout(10):
            await paid.wait()  # the request was accepted
        second_events: list[object] = []
        second = asyncio.create_task(speak(voice, second_events))
        await asyncio.sleep(0.3)
        assert len(eleven.tts_calls()) == 1  # the second waits for the slot, unasked
        assert second_events == []
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        eleven.audio_gate.set()
        async with asyncio.timeout(10):
            await second
    assert isinstance(first_events[0], SpeechBilled)
    assert isinstance(second_events[0], SpeechBilled)
    assert isinstance(second_events[-1], SpeechResult)
    assert len(eleven.tts_calls()) == 2
    assert eleven.peak_in_flight == 1


async def test_a_speech_refused_before_its_request_gives_the_slot_back() -> None:
    """No key: refused before the provider is asked; the slot is not kept."""
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, Vault({}))
        _, failed = await until_failure(voice, SPEC, "Hello there.")
        assert failed is not None
        assert not voice._work_slots.locked()
