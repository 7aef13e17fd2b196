"""Inference's voice work is bounded for memory: conversions and clone uploads in slots.

A 40-minute conversion holds ~230 MB of samples (+234 MiB VmHWM measured), a clone up to
250 MiB of samples, and inference's limit is 512Mi beside its own ~175 MiB: two at once
would get the pod killed with every answer on it. So at most `work_at_once` run at a time;
the rest wait (they do not fail). The voice message's real size is checked against Discord's
upload limit before its bytes leave inference.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.unit.inference.test_voice import RACHEL, Vault, service, until_failure, vendor_client
from tzurot.audio import VOICE_MESSAGE_BITRATE, VoiceMessage
from tzurot.audio import voice_message as real_voice_message
from tzurot.inference import voice as voice_module
from tzurot.inference.server import InferenceServicer
from tzurot.inference.speech import VoiceSpec
from tzurot.inference.voice import (
    MAX_VOICE_MESSAGE_SECONDS,
    VOICE_MESSAGE_MAX_BYTES,
    WORK_UNIT,
    SpeechBilled,
    SpeechResult,
    VoiceService,
)
from tzurot.runtime.errors import FailedPrecondition
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import inference_pb2 as inf

WORST_KBPS_OVER = 1.05
"""A voice message's size over its bitrate's bytes at worst (tests/unit/audio/
test_voice_bitrate.py: 1.3-3.4 % measured)."""


class Gauge:
    """How many run at once, and the most ever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.most = self.done = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1
            self.done += 1


def slow_conversions(gauge: Gauge, seconds: float) -> Callable[..., VoiceMessage]:
    def convert(data: bytes, **kwargs: Any) -> VoiceMessage:
        gauge.enter()
        try:
            time.sleep(seconds)
            return real_voice_message(data, **kwargs)
        finally:
            gauge.leave()

    return convert


def with_slots(voice: VoiceService, at_once: int) -> VoiceService:
    """The same service with `at_once` slots."""
    return VoiceService(
        providers=voice._providers,
        keys=voice._keys,
        elevenlabs=voice._elevenlabs,
        speech=voice._speech,
        work_at_once=at_once,
    )


def test_forty_minutes_fit_discords_upload_limit() -> None:
    """The promise the duration cap makes (refused before the provider is paid): the longest
    voice message, at its worst bitrate, still fits the upload limit."""
    worst = MAX_VOICE_MESSAGE_SECONDS * VOICE_MESSAGE_BITRATE / 8 * WORST_KBPS_OVER
    assert worst <= VOICE_MESSAGE_MAX_BYTES


@pytest.mark.parametrize("at_once", [None, 2])
async def test_conversions_wait_for_a_slot_and_none_fails(
    monkeypatch: pytest.MonkeyPatch, at_once: int | None
) -> None:
    """Five of the largest speeches at once (each estimated at a whole unit, 40 minutes):
    never more conversions than the setting (one by default), and every one of them is
    posted, the waiting ones later."""
    gauge = Gauge()
    monkeypatch.setattr(voice_module, "voice_message", slow_conversions(gauge, 0.2))
    monkeypatch.setattr(voice_module, "estimated_seconds", lambda *_: float(WORK_UNIT))
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        if at_once is not None:
            voice = with_slots(voice, at_once)
        results = await asyncio.gather(
            *(
                until_failure(voice, VoiceSpec("elevenlabs", RACHEL), "Hello there.")
                for _ in "12345"
            )
        )
    assert [error for _, error in results] == [None] * 5
    assert all(isinstance(events[-1], SpeechResult) for events, _ in results)
    assert gauge.done == 5
    assert gauge.most == (at_once or 1)


async def test_a_cancelled_conversion_keeps_its_slot_until_its_thread_ends() -> None:
    """A deadline passing mid-conversion ends the call, not the thread (it cannot be
    stopped): the next conversion starts only once that thread is done."""
    gauge = Gauge()
    started, release = threading.Event(), threading.Event()

    def held() -> str:
        gauge.enter()
        started.set()
        try:
            release.wait(5)
            return "first"
        finally:
            gauge.leave()

    def second() -> str:
        gauge.enter()
        gauge.leave()
        return "second"

    async with vendor_client() as http, FakeElevenLabs() as eleven, FakeProvider() as provider:
        voice = service(http, eleven, provider, Vault({}))
        first = asyncio.create_task(voice._convert(held))
        assert await asyncio.to_thread(started.wait, 5)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        then = asyncio.create_task(voice._convert(second))
        await asyncio.sleep(0.2)
        assert not then.done()  # waits for the first thread, still running
        release.set()
        assert await then == "second"
    assert gauge.most == 1


async def test_a_voice_message_larger_than_discord_takes_is_refused_before_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real encoded size against the upload limit: refused in inference (SPEECH_TOO_LONG,
    said for the user), not carried to the bot for Discord to refuse; no byte of it goes out."""
    monkeypatch.setattr(voice_module, "VOICE_MESSAGE_MAX_BYTES", 1000)
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        events, failed = await until_failure(
            voice, VoiceSpec("elevenlabs", RACHEL), "Words to be spoken. " * 5
        )
    assert isinstance(failed, FailedPrecondition)
    assert failed.reason == "SPEECH_TOO_LONG"
    assert "more than Discord takes" in failed.message
    assert events == [SpeechBilled("elevenlabs", "eleven_multilingual_v2", 100)]


async def test_clone_uploads_take_a_slot_from_reading_their_samples_to_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three clones at once through the servicer: one reads its samples and uploads them at a
    time (the others' samples stay with the sender, held by gRPC's flow control), a
    conversion waits for them too, and every clone is answered."""
    gauge = Gauge()
    async with vendor_client() as http, FakeElevenLabs() as eleven, FakeProvider() as provider:
        voice = service(http, eleven, provider, Vault({}))

        async def clone(*args: Any, **kwargs: Any) -> str:
            await asyncio.sleep(0.1)
            gauge.leave()
            return f"voice-{gauge.done}"

        monkeypatch.setattr(voice, "clone", clone)
        servicer = InferenceServicer(inference=None, voice=voice)  # type: ignore[arg-type]  # a clone needs no Inference

        async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
            gauge.enter()  # its samples are being read
            yield inf.CloneVoiceRequest(header=inf.CloneVoiceHeader(user_id="u1", name="Nova"))
            for n in range(3):
                yield inf.CloneVoiceRequest(
                    sample=inf.CloneVoiceSample(filename=f"{n}.mp3", data=b"x" * 1000)
                )

        def converted() -> str:
            gauge.enter()
            gauge.leave()
            return "converted"

        clones = [
            asyncio.create_task(servicer.CloneVoice(parts(), None))  # type: ignore[arg-type]  # unused context
            for _ in range(3)
        ]
        conversion = asyncio.create_task(voice._convert(converted))
        answers = await asyncio.gather(*clones)
        assert await conversion == "converted"
    assert sorted(a.voice_id for a in answers) == ["voice-1", "voice-2", "voice-3"]
    assert gauge.most == 1
