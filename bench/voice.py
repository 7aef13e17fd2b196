"""Voice (issue 17): from the answer's text posted to its voice message posted.

The fake Discord, the real bot and the whole mesh, with the fake ElevenLabs behind inference.
Each turn, a user with voice enabled @mentions Lilith; the clock starts when the fake Discord
receives the answer's text (the instant fake provider: the text is one webhook post) and stops
when it receives the voice message. In between: ConfirmDelivery (history stored), SpeakAnswer
(gateway → inference → the fake ElevenLabs, which encodes real MP3), the transcode to OGG/Opus
with its waveform, the audio back over gRPC, and the bot's multipart post. `voice_overhead`
subtracts the fake ElevenLabs' own time for that request (its `latency` plus encoding), which a
real vendor would replace with its own.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.env import quiet_logs
from bench.results import Figure, summarise
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.fake_discord.voice_messages import IS_VOICE_MESSAGE
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

VENDOR_LATENCY = 0.05  # the fake's time to first byte, seconds


def run(quick: bool) -> list[Figure]:
    return asyncio.run(_run(5 if quick else 30))


def _voices(world: World) -> int:
    return sum(
        1
        for m in world.discord.messages.get(int(world.general["id"]), [])
        if int(m.data.get("flags") or 0) & IS_VOICE_MESSAGE
    )


def _more_texts(world: World, before: int) -> Callable[[], bool]:
    return lambda: len(world.discord.webhook_messages(world.general)) > before


def _more_voices(world: World, before: int) -> Callable[[], bool]:
    return lambda: _voices(world) > before


async def _run(turns: int) -> list[Figure]:
    with (
        quiet_logs(),
        tempfile.TemporaryDirectory(prefix="tzbench-voice-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        database = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
        async with (
            FakeElevenLabs() as eleven,
            discord_world(
                database,
                Path(tmp),
                inference={"elevenlabs_url": eleven.base_url},
                # One user sends every turn, back to back: buckets large enough for the
                # run (the defaults, 10 a user and 30 a channel, refused the full run's 12th).
                gateway={"rate_user_capacity": turns + 10, "rate_channel_capacity": turns + 10},
            ) as world,
        ):
            eleven.latency = VENDOR_LATENCY
            alice = common.Actor(user_id=str(world.alice["id"]), display_name="alice")
            await world.set_key(world.alice)
            await world.cli.SetWalletKey(
                gw.SetWalletKeyRequest(
                    actor=alice, provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY
                )
            )
            await world.cli.SetPersonalityVoice(
                gw.SetPersonalityVoiceRequest(
                    personality="lilith",
                    voice=common.VoiceConfig(
                        provider="elevenlabs",
                        voice_id="21m00Tcm4TlvDq8ikWAM",
                        frequency=common.VOICE_FREQUENCY_ALWAYS,
                    ),
                )
            )
            total: list[float] = []
            overhead: list[float] = []
            vendor: list[float] = []
            async with running_bot(world):
                for n in range(turns + 2):  # two warm-up turns
                    texts = len(world.discord.webhook_messages(world.general))
                    voices = _voices(world)
                    await world.discord.say(
                        world.general, world.alice, f"@Lilith tell me tale number {n}"
                    )
                    await world.discord.wait_until(_more_texts(world, texts), within=120)
                    text_done = time.perf_counter()
                    await world.discord.wait_until(_more_voices(world, voices), within=120)
                    posted = time.perf_counter()
                    if n < 2:
                        continue
                    own = eleven.tts_seconds[-1]
                    total.append((posted - text_done) * 1000)
                    vendor.append(own * 1000)
                    overhead.append((posted - text_done - own) * 1000)
    return [
        summarise("voice_text_to_voice_message", total, spoken_chars="~40"),
        summarise("voice_fake_vendor_own", vendor, latency_ms=VENDOR_LATENCY * 1000),
        summarise("voice_overhead", overhead, note="text posted → voice posted, minus vendor"),
    ]
