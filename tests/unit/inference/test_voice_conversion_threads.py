"""A paid speech's conversion does not wait behind the default thread pool's other work.

Up to 16 speeches per unit of the budget are past payment at once (MIN_SPEECH_WEIGHT); their
conversions run on the voice service's own threads, as many as that, so lorebook matching or
page extraction filling asyncio's default pool (to_thread) cannot hold a paid speech back.
"""

from __future__ import annotations

import asyncio
import threading

from tests.unit.inference.test_voice import Vault, service, vendor_client
from tzurot.inference.voice import MIN_SPEECH_WEIGHT, WORK_UNIT
from tzurot.inference.voice_budget import Reservation
from tzurot.testing.fake_elevenlabs import FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider

DEFAULT_POOL_MOST = 32
"""asyncio's default pool has at most min(32, cpus + 4) threads: one more blocked task than
that fills it on any machine."""


async def test_conversions_start_at_once_while_the_default_pool_is_full() -> None:
    """As many minimum-weight speeches as the budget lets through convert together (they meet
    at a barrier) while every default-pool thread is blocked."""
    at_once = WORK_UNIT // MIN_SPEECH_WEIGHT
    loop = asyncio.get_running_loop()
    unblock = threading.Event()
    blockers = [loop.run_in_executor(None, unblock.wait, 30) for _ in range(DEFAULT_POOL_MOST + 1)]
    together = threading.Barrier(at_once, timeout=3)

    def convert() -> int:
        return together.wait()

    try:
        async with vendor_client() as http, FakeElevenLabs() as eleven, FakeProvider() as provider:
            voice = service(http, eleven, provider, Vault({}))
            holds = [
                Reservation(voice._work_slots, MIN_SPEECH_WEIGHT, "speech") for _ in range(at_once)
            ]
            for hold in holds:
                await hold.take()  # past payment: each holds its weight already
            arrived = await asyncio.wait_for(
                asyncio.gather(*(voice._convert(convert, hold) for hold in holds)), 10
            )
    finally:
        unblock.set()
        await asyncio.gather(*blockers)
    assert sorted(arrived) == list(range(at_once))
    assert voice._work_slots.free == voice._work_slots.capacity
