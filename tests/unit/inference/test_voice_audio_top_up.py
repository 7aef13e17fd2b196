"""A speech whose audio runs longer than its estimate tops its reservation up, never waiting.

The budget bounds voice work's memory by what each work reserves; a speech reserves its
estimated seconds before the provider is paid. Its audio passing what that covers takes more
of the budget as the bytes arrive, without waiting and never ahead of a queued reservation;
when the budget cannot give it, the paid audio is kept and the shortfall logged once. Whatever
way the speech ends (posted, the provider failing, cancelled streaming or converting, a
conversion that fails), exactly what it took is given back: another work's reservation held
throughout shows a release of too much as well as one of too little.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import httpx2 as httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.unit.inference.test_voice import RACHEL, Vault, vendor_client
from tzurot.audio import AudioError, VoiceMessage
from tzurot.inference import voice as voice_module
from tzurot.inference import voice_audio
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import Accepted, ElevenLabsClient, OpenAISpeechClient, VoiceSpec
from tzurot.inference.voice import MIN_SPEECH_WEIGHT, WORK_UNIT, SpeechResult, VoiceService
from tzurot.inference.voice_budget import Reservation, WeightedBudget
from tzurot.runtime.errors import Unavailable
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY

TEXT = "Hello there."
"""Estimated at a few seconds: the speech reserves the floor, MIN_SPEECH_WEIGHT (150)."""
SPEC = VoiceSpec("elevenlabs", RACHEL)
SECOND = 100
"""Audio bytes taken as a second here (AUDIO_BYTES_PER_SECOND), to keep the audio small."""
CHUNK = 50 * SECOND
OTHER = 1000
"""What another work holds throughout: the budget's free part ends at WORK_UNIT - OTHER."""


class Script(ElevenLabsClient):
    """ElevenLabs accepting the text, then sending `chunks` pieces of CHUNK bytes; the budget's
    free units are noted before each piece after the first (once the one before was taken in).
    After `fail_after` pieces it raises `failure`; after `stall_after` it waits for `go`."""

    def __init__(
        self, http: httpx.AsyncClient, budget: Callable[[], WeightedBudget], chunks: int
    ) -> None:
        super().__init__(http)
        self._budget, self._chunks = budget, chunks
        self.free: list[int] = []
        self.fail_after: int | None = None
        self.stall_after: int | None = None
        self.go = asyncio.Event()
        self.stalled = asyncio.Event()

    async def synthesize(
        self, api_key: SecretStr, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        yield Accepted("eleven_multilingual_v2")
        for sent in range(self._chunks):
            if sent:
                self.free.append(self._budget().free)
            if sent == self.fail_after:
                raise Unavailable("elevenlabs broke off the audio")
            if sent == self.stall_after:
                self.stalled.set()
                await self.go.wait()
            yield b"\xff" * CHUNK


class Converted:
    """The conversion stood in for: what the budget had free while it ran; it fails with
    `error`, or waits for `go` (a threading.Event: it runs on a conversion thread)."""

    def __init__(self, budget: Callable[[], WeightedBudget]) -> None:
        self._budget = budget
        self.free: int | None = None
        self.error: Exception | None = None
        self.go: threading.Event | None = None
        self.running = threading.Event()

    def __call__(self, data: bytes, *, max_seconds: float) -> VoiceMessage:
        self.free = self._budget().free
        self.running.set()
        if self.go is not None:
            self.go.wait(10)
        if self.error is not None:
            raise self.error
        return VoiceMessage(b"OggS", len(data) / SECOND, "AA==")


@pytest.fixture(autouse=True)
def small_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_audio, "AUDIO_BYTES_PER_SECOND", SECOND)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with vendor_client() as client:
        yield client


def speaking(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, chunks: int
) -> tuple[VoiceService, Script, Converted]:
    """A service (one unit: WORK_UNIT) whose ElevenLabs sends `chunks` pieces of audio."""
    holder: list[VoiceService] = []
    script = Script(http, lambda: holder[0]._work_slots, chunks)
    voice = VoiceService(
        providers=ProviderRegistry({}),
        keys=KeyResolver(Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})),
        elevenlabs=script,
        speech=OpenAISpeechClient(http, max_retries=0),
    )
    holder.append(voice)
    converted = Converted(lambda: voice._work_slots)
    monkeypatch.setattr(voice_module, "voice_message", converted)
    return voice, script, converted


async def held_by_another(voice: VoiceService, weight: int = OTHER) -> Reservation:
    other = Reservation(voice._work_slots, weight, "another speech")
    await other.take()
    return other


async def speak(voice: VoiceService) -> list[object]:
    return [event async for event in voice.synthesize("u1", SPEC, TEXT)]


async def settled() -> None:
    """The conversion thread's done callbacks have run (they give its weight back)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_try_acquire_takes_only_what_needs_no_wait_and_never_jumps_the_queue() -> None:
    budget = WeightedBudget(10)
    assert budget.try_acquire(4)
    assert budget.free == 6
    assert not budget.try_acquire(7)  # too little free: nothing taken
    assert budget.free == 6
    queued = asyncio.create_task(budget.acquire(8))
    await asyncio.sleep(0)
    assert not budget.try_acquire(1)  # 6 free, but the 8 arrived first
    assert budget.free == 6
    budget.release(4)
    await queued
    assert budget.free == 2
    assert budget.try_acquire(2)
    assert budget.free == 0


async def test_longer_audio_tops_the_reservation_up_as_it_streams(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 seconds of audio for a speech reserved at 150: the reservation grows by a step
    (150) each time the bytes pass what it covers, 1,050 at the end, all of it held through
    the conversion and given back once it is done, exactly."""
    voice, script, converted = speaking(http, monkeypatch, chunks=20)
    other = await held_by_another(voice)
    with capture_logs() as logs:
        events = await speak(voice)
    await settled()
    free_after = voice._work_slots.free
    other.release()
    start = WORK_UNIT - OTHER - MIN_SPEECH_WEIGHT
    # Chunk n+1 is asked after n x 50 s arrived: 150 s covered up to 3, then a step more.
    assert script.free[:4] == [start, start, start, start - 150]
    assert script.free[-1] == WORK_UNIT - OTHER - 1050
    assert converted.free == WORK_UNIT - OTHER - 1050
    assert isinstance(events[-1], SpeechResult)
    assert free_after == WORK_UNIT - OTHER
    assert [e for e in logs if e["event"] == "voice.longer_than_reserved"] == [
        {
            "event": "voice.longer_than_reserved",
            "log_level": "info",
            "estimated_secs": MIN_SPEECH_WEIGHT,
            "reserved_secs": 1050,
            "duration_secs": 1000,
        }
    ]
    assert not [e for e in logs if e["event"] == "voice.over_budget"]


async def test_a_top_up_the_budget_cannot_give_keeps_the_audio_and_warns_once(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only 100 units left beside the speech: it takes them in what it needs at a time (less
    than a step), then goes on without (the audio is paid for), logging the shortfall once,
    with figures and never the text; what it took is given back."""
    voice, script, converted = speaking(http, monkeypatch, chunks=20)
    other = await held_by_another(voice, WORK_UNIT - MIN_SPEECH_WEIGHT - 100)
    with capture_logs() as logs:
        events = await speak(voice)
    await settled()
    free_after = voice._work_slots.free
    other.release()
    assert script.free[3:7] == [50, 0, 0, 0]  # 200 s: +50; 250 s: +50; then nothing left
    assert converted.free == 0
    assert isinstance(events[-1], SpeechResult)
    warned = [entry for entry in logs if entry["event"] == "voice.over_budget"]
    assert warned == [
        {
            "event": "voice.over_budget",
            "log_level": "warning",
            "provider": "elevenlabs",
            "estimated_secs": MIN_SPEECH_WEIGHT,
            "reserved_secs": 250,
            "audio_secs": 300,
            "audio_bytes": 300 * SECOND,
        }
    ]
    assert free_after == MIN_SPEECH_WEIGHT + 100


async def test_a_top_up_never_overtakes_a_queued_clone(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone queued for the whole unit: the speech's top-up does not take the 1,250 units
    free before it, though they would fit; the clone has the unit once both are done."""
    voice, script, _ = speaking(http, monkeypatch, chunks=10)
    other = await held_by_another(voice)
    script.stall_after = 1
    speech = asyncio.create_task(speak(voice))
    async with asyncio.timeout(5):
        await script.stalled.wait()
    cloned = asyncio.Event()

    async def clone() -> None:
        async with voice.audio_slot("clone"):
            cloned.set()

    cloner = asyncio.create_task(clone())
    await asyncio.sleep(0.05)
    with capture_logs() as logs:
        script.go.set()
        async with asyncio.timeout(5):
            events = await speech
    await settled()
    assert not cloned.is_set()
    other.release()
    async with asyncio.timeout(5):
        await cloner
    assert set(script.free) == {WORK_UNIT - OTHER - MIN_SPEECH_WEIGHT}
    assert isinstance(events[-1], SpeechResult)
    assert [entry["event"] for entry in logs].count("voice.over_budget") == 1
    assert voice._work_slots.free == WORK_UNIT


async def test_a_provider_failing_after_top_ups_gives_back_all_it_took(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice, script, _ = speaking(http, monkeypatch, chunks=20)
    other = await held_by_another(voice)
    script.fail_after = 10  # 500 s arrived: 600 held
    with pytest.raises(Unavailable):
        await speak(voice)
    assert script.free[-1] == WORK_UNIT - OTHER - 600
    assert voice._work_slots.free == WORK_UNIT - OTHER
    other.release()


async def test_too_much_audio_after_top_ups_gives_back_all_it_took(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice, script, _ = speaking(http, monkeypatch, chunks=20)
    monkeypatch.setattr(voice_module, "MAX_SPEECH_AUDIO_BYTES", 12 * CHUNK)
    other = await held_by_another(voice)
    with pytest.raises(Unavailable, match="more audio than expected"):
        await speak(voice)
    assert script.free[-1] == WORK_UNIT - OTHER - 600  # 600 s arrived, the 13th too many
    assert voice._work_slots.free == WORK_UNIT - OTHER
    other.release()


async def test_a_speech_cancelled_mid_stream_gives_back_all_it_took(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice, script, _ = speaking(http, monkeypatch, chunks=20)
    other = await held_by_another(voice)
    script.stall_after = 10  # 500 s arrived: 600 held
    speech = asyncio.create_task(speak(voice))
    async with asyncio.timeout(5):
        await script.stalled.wait()
    assert voice._work_slots.free == WORK_UNIT - OTHER - 600
    speech.cancel()
    with pytest.raises(asyncio.CancelledError):
        await speech
    assert voice._work_slots.free == WORK_UNIT - OTHER
    other.release()


async def test_a_speech_cancelled_while_converting_gives_all_back_when_the_thread_ends(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller leaves (its deadline passed); the conversion's thread cannot be stopped, so
    the topped-up weight stays taken until it ends, then all of it is given back."""
    voice, _, converted = speaking(http, monkeypatch, chunks=20)
    converted.go = threading.Event()
    other = await held_by_another(voice)
    speech = asyncio.create_task(speak(voice))
    async with asyncio.timeout(5):
        await asyncio.to_thread(converted.running.wait, 5)
    speech.cancel()
    with pytest.raises(asyncio.CancelledError):
        await speech
    assert voice._work_slots.free == WORK_UNIT - OTHER - 1050
    converted.go.set()
    async with asyncio.timeout(5):
        while voice._work_slots.free != WORK_UNIT - OTHER:  # noqa: ASYNC110  # a thread's end
            await asyncio.sleep(0.01)
    other.release()


async def test_a_conversion_failing_after_top_ups_gives_back_all_it_took(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice, _, converted = speaking(http, monkeypatch, chunks=20)
    converted.error = AudioError("the audio could not be decoded")
    other = await held_by_another(voice)
    with pytest.raises(Unavailable, match="could not be decoded"):
        await speak(voice)
    await settled()
    assert converted.free == WORK_UNIT - OTHER - 1050
    assert voice._work_slots.free == WORK_UNIT - OTHER
    other.release()
