"""Voice through Discord: the fake Discord, the real bot, the whole mesh, the fake ElevenLabs.

A user who enables voice gets the text, then a voice message (the native bubble: OGG/Opus,
IS_VOICE_MESSAGE, duration and waveform) whose file decodes; a user who disabled it gets
text only; "Speak" speaks one answer on request; where the bot may not send voice messages the
audio comes as a plain file through the personality's webhook; a channel set to off speaks
nothing, in its threads either; an owner uploads two samples (a bad one is refused) and clones
the voice with their own ElevenLabs key.

Paid is recorded: a speech is a usage row from the moment the vendor bills it, marked failed
when its audio then breaks off or the call is cancelled. Nothing is paid that cannot be
delivered: no voice after Discord refused the answer, no Speak where neither a voice message
nor the webhook's audio file can be posted, never more text than the voice's model takes. A
new clone deletes the one it replaces, and deleting the personality deletes its clone; a
double click clones once. A clone whose answer was lost (the vendor's answer dropped, or
gateway gone before storing it) holds no slot of the user's plan once the next clone is
made. A key ElevenLabs refuses (revoked: 401
`invalid_api_key`) in a speech or a clone turns inactive in `/wallet list`; a refusal for
another reason (quota, a full plan) leaves it active. A key restricted in ElevenLabs without
the permission a clone or a speech needs (401 `missing_permissions`) is told which permission
that is, and stays active: it works for the rest. An answer spoken by itself whose speech is
refused so (a rejected key, a missing permission, no characters left) is told under the answer
by the bot, with what to do and never the key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Literal

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2

from tzurot.audio import encode_tone, probe
from tzurot.bot.bot import TzurotBot
from tzurot.bot.commands.words import plural
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import (
    USER_KEY,
    VoiceWorld,
    World,
    member_actor,
    running_bot,
    settled,
    slash_text,
    voice_world,
)
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.rules import Permission
from tzurot.testing.fake_discord.voice_messages import IS_VOICE_MESSAGE
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.testing.fake_elevenlabs_voices import FakeVoice
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

pytestmark = pytest.mark.e2e

RACHEL = "21m00Tcm4TlvDq8ikWAM"


@pytest.fixture(scope="module")
async def voice_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VoiceWorld]:
    async with voice_world(
        postgres_url,
        Path(tmp_path_factory.mktemp("voice")),
        # Key uses reach keyvault quickly; the operator's cap is no lower than any model's.
        gateway={"key_use_flush_seconds": 0.2, "voice_max_characters": 10_000},
    ) as world:
        yield world


@pytest.fixture
def vw(voice_mesh: VoiceWorld) -> VoiceWorld:
    voice_mesh.world = voice_mesh.world.scene()
    return voice_mesh


async def give_keys(world: World, *users: Json) -> None:
    for user in users:
        await world.set_key(user)
        await world.cli.SetWalletKey(
            gw.SetWalletKeyRequest(
                actor=member_actor(user), provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY
            )
        )


async def lilith_speaks(world: World, frequency: common.VoiceFrequency.ValueType) -> None:
    await world.cli.SetPersonalityVoice(
        gw.SetPersonalityVoiceRequest(
            personality="lilith",
            voice=common.VoiceConfig(
                provider="elevenlabs", voice_id=RACHEL, stability=0.5, frequency=frequency
            ),
        )
    )


def voice_messages(world: World, channel: Json) -> list[Posted]:
    return [
        m
        for m in world.discord.messages.get(int(channel["id"]), [])
        if int(m.data.get("flags") or 0) & IS_VOICE_MESSAGE
    ]


def check_voice_file(world: World, attachment: Json, text: str) -> None:
    """The attachment is a real voice message file: decodes as mono 48 kHz Opus in OGG, its
    duration is the file's and fits the text, its waveform is at most 256 plausible points."""
    assert attachment["content_type"] == "audio/ogg"
    data, _ = world.discord.files[int(attachment["id"])]
    info = probe(data)
    assert (info.container, info.codec, info.sample_rate, info.channels) == (
        "ogg",
        "opus",
        48000,
        1,
    )
    assert attachment["duration_secs"] == pytest.approx(info.duration_secs, abs=0.1)
    assert attachment["duration_secs"] == pytest.approx(max(0.5, len(text) / 15), abs=0.3)
    points = base64.b64decode(attachment["waveform"])
    assert 0 < len(points) <= 256
    assert max(points) > 20  # not silence


async def spoken_characters(database: str) -> list[int]:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT characters FROM core.usage_log "
                    "WHERE request_type = 'speech' ORDER BY id"
                )
            )
            return [int(r[0]) for r in rows]
    finally:
        await engine.dispose()


async def speech_usage(database: str, job_id: str) -> list[tuple[str, int, bool]]:
    """(model, characters, failed) of the job's speech usage rows, oldest first."""
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT model, characters, failed FROM core.usage_log "
                    "WHERE request_type = 'speech' AND job_id = :job ORDER BY id"
                ),
                {"job": job_id},
            )
            return [(str(r[0]), int(r[1]), bool(r[2])) for r in rows]
    finally:
        await engine.dispose()


async def speech_totals(database: str, platform_user_id: str) -> dict[str, tuple[int, int, int]]:
    """model -> (requests, characters, failed) of the user's speech usage rows."""
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT u.model, count(*), sum(u.characters), count(*) FILTER (WHERE u.failed)"
                    " FROM core.usage_log u JOIN core.users ON users.id = u.user_id"
                    " WHERE u.request_type = 'speech' AND users.platform_user_id = :user"
                    " GROUP BY u.model"
                ),
                {"user": platform_user_id},
            )
            return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    finally:
        await engine.dispose()


async def last_used(world: World, user: Json, provider: str) -> bool:
    """Whether `/wallet list` will show the user's `provider` key as used (polls: the gateway
    sends uses to keyvault in batches)."""
    for _ in range(200):
        listed = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=member_actor(user)))
        if any(k.provider == provider and k.HasField("last_used_at") for k in listed.keys):
            return True
        await asyncio.sleep(0.05)
    return False


async def settle(bot: TzurotBot) -> None:
    assert bot.flow is not None
    await bot.flow.voice.drain()


async def test_an_enabled_user_gets_the_text_then_a_voice_message(vw: VoiceWorld) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        assert "on:" in await slash_text(world, world.alice, "voice", "enable")
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
        job = await world.delivered(f"{said.id}:lilith")
        (voice,) = await world.discord.wait_until(lambda: voice_messages(world, world.general))
        await settle(bot)
    (text,) = world.discord.webhook_messages(world.general)
    assert text.content.endswith(job.content)
    assert voice.id > text.id  # the text came first
    assert voice.content == ""
    assert voice.data["message_reference"]["message_id"] == str(text.id)
    (attachment,) = voice.data["attachments"]
    check_voice_file(world, attachment, job.content)
    calls = vw.eleven.tts_calls()[before:]
    assert [c.body["text"] for c in calls] == [job.content]
    assert calls[0].body["voice_settings"] == {"stability": 0.5}
    assert (await spoken_characters(vw.database))[-1] == len(job.content)
    assert await last_used(world, world.alice, "elevenlabs")  # her ElevenLabs key paid
    assert not world.discord.refusals


async def test_a_disabled_user_gets_text_only_and_speak_speaks_on_request(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.bob)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        assert "text only" in await slash_text(world, world.bob, "voice", "disable")
        said = await world.discord.say(world.general, world.bob, "@Lilith hello there")
        job = await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        assert voice_messages(world, world.general) == []
        assert len(vw.eleven.tts_calls()) == before  # nothing paid for
        (text,) = world.discord.webhook_messages(world.general)
        # One answer, on request: the Speak menu.
        asked = await world.discord.context_menu(world.general, world.bob, "Speak", text)
        await world.discord.wait_until(lambda: any("Spoken" in t for t in asked.texts()))
        (voice,) = voice_messages(world, world.general)
    assert voice.data["message_reference"]["message_id"] == str(text.id)
    check_voice_file(world, voice.data["attachments"][0], job.content)


async def test_without_send_voice_messages_the_audio_comes_through_the_webhook(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    world.discord.deny_bot(world.general, Permission.SEND_VOICE_MESSAGES)
    async with running_bot(world) as bot:
        await slash_text(world, world.alice, "voice", "reset")
        said = await world.discord.say(world.general, world.alice, "@Lilith sing")
        await world.delivered(f"{said.id}:lilith")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) == 2
        )
        await settle(bot)
    text, audio = world.discord.webhook_messages(world.general)
    assert voice_messages(world, world.general) == []
    assert audio.author_name == text.author_name == "Lilith"
    (attachment,) = audio.data["attachments"]
    assert attachment["filename"] == "voice-message.ogg"
    data, _ = world.discord.files[int(attachment["id"])]
    assert probe(data).codec == "opus"
    assert not world.discord.refusals  # the bot did not try what it may not do


async def test_an_owner_uploads_two_samples_and_clones_the_voice(vw: VoiceWorld) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug="nova", display_name="Nova", system_prompt="You are Nova."
            ),
        )
    )
    first = world.discord.upload(world.general, "hello.mp3", encode_tone(2.0), "audio/mpeg")
    second = world.discord.upload(
        world.general, "laugh.wav", encode_tone(1.5, fmt="wav"), "audio/wav"
    )
    bad = world.discord.upload(world.general, "song.mp3", b"ID3 not really" * 100, "audio/mpeg")
    async with running_bot(world):
        for sample in (first, second):
            added = await slash_text(
                world, world.alice, "personality", "voice-sample", "upload",
                personality="nova", file=sample,
            )  # fmt: skip
            assert "Added" in added
        refused = await slash_text(
            world, world.alice, "personality", "voice-sample", "upload",
            personality="nova", file=bad,
        )  # fmt: skip
        assert "Sample refused" in refused
        assert "song.mp3" in refused
        assert "not an MP3, WAV or OGG recording" in refused
        listed = await slash_text(
            world, world.alice, "personality", "voice-sample", "list", personality="nova"
        )
        assert "(2/25" in listed
        assert "hello.mp3: mp3, 2.0 s" in listed
        assert "laugh.wav: wav, 1.5 s" in listed
        not_owner = await slash_text(
            world, world.bob, "personality", "voice", "clone", personality="nova"
        )
        assert "only the owner" in not_owner or "no personality" in not_owner
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="nova"
        )
    assert "Cloned from 2 samples" in cloned
    (made,) = [v for v in vw.eleven.voices.values() if v.name == "Nova"]
    assert made.sample_count == 2
    voice = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="nova"))
    assert (voice.voice.provider, voice.voice.voice_id) == ("elevenlabs", made.voice_id)
    (call,) = [c for c in vw.eleven.clone_calls() if c.body.get("name") == "Nova"]
    assert [name for name, _ in call.body["files"]] == ["hello.mp3", "laugh.wav"]


async def test_a_channel_set_to_off_forbids_voice_and_a_refusing_channel_gets_the_file(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    quiet = world.discord.add_channel(world.guild, "quiet")
    await world.cli.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL,
            location=common.Location(guild_id=str(world.guild["id"]), channel_id=str(quiet["id"])),
            key="voice_mode",
            value=struct_pb2.Value(string_value="off"),
        )
    )
    # Discord refuses voice messages in this one (50173): the file comes through the webhook.
    world.discord.no_voice_channels.add(int(world.general["id"]))
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        assert "on:" in await slash_text(world, world.alice, "voice", "enable")
        said = await world.discord.say(quiet, world.alice, "@Lilith shh")
        await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        assert len(vw.eleven.tts_calls()) == before  # the user's choice does not beat it
        assert len(world.discord.webhook_messages(quiet)) == 1
        said = await world.discord.say(world.general, world.alice, "@Lilith speak up")
        await world.delivered(f"{said.id}:lilith")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) == 2
        )
        await settle(bot)
    _, audio = world.discord.webhook_messages(world.general)
    assert voice_messages(world, world.general) == []
    assert probe(world.discord.files[int(audio.data["attachments"][0]["id"])][0]).codec == "opus"
    assert [r[2] for r in world.discord.refusals] == [50173]  # tried once, then fell back


async def test_a_channel_set_to_off_forbids_voice_in_its_threads_too(vw: VoiceWorld) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    quiet = world.discord.add_channel(world.guild, "quiet")
    thread = world.discord.add_thread(world.guild, quiet, "side chat")
    await world.cli.SetSetting(  # a moderator's /settings set level:channel, on the channel
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL,
            location=common.Location(guild_id=str(world.guild["id"]), channel_id=str(quiet["id"])),
            key="voice_mode",
            value=struct_pb2.Value(string_value="off"),
        )
    )
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        assert "on:" in await slash_text(world, world.alice, "voice", "enable")
        said = await world.discord.say(thread, world.alice, "@Lilith whisper to me")
        await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        (text,) = world.discord.webhook_messages(thread)  # the text, and nothing spoken
        assert voice_messages(world, thread) == []
        # Speak on the thread's answer is refused as in the channel.
        asked = await world.discord.context_menu(thread, world.alice, "Speak", text)
        await world.discord.wait_until(lambda: any(asked.texts()))
        await settle(bot)
    assert "voice is turned off in this channel" in "".join(asked.texts())
    assert len(vw.eleven.tts_calls()) == before  # nothing paid for
    assert world.discord.webhook_messages(thread) == [text]
    assert voice_messages(world, thread) == []


async def test_an_openai_compatible_voice_and_the_users_character_limit(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await world.set_key(world.alice)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(world.alice), provider="openai", api_key=USER_KEY)
    )
    await world.cli.SetPersonalityVoice(
        gw.SetPersonalityVoiceRequest(
            personality="lilith",
            voice=common.VoiceConfig(
                provider="openai", voice_id="nova", speed=1.25,
                frequency=common.VOICE_FREQUENCY_ALWAYS,
            ),
        )
    )  # fmt: skip
    async with running_bot(world) as bot:
        limited = await slash_text(world, world.alice, "voice", "limit", characters=20)
        assert "up to 20 characters" in limited
        said = await world.discord.say(
            world.general, world.alice, "@Lilith say something rather long please"
        )
        job = await world.delivered(f"{said.id}:lilith")
        (voice,) = await world.discord.wait_until(lambda: voice_messages(world, world.general))
        await settle(bot)
    (request,) = world.provider.speech_requests()[-1:]
    spoken = request.body["input"]
    assert len(spoken) <= 20
    assert job.content.startswith(spoken)
    assert (request.body["voice"], request.body["speed"]) == ("nova", 1.25)
    assert (await spoken_characters(vw.database))[-1] == len(spoken)
    data, _ = world.discord.files[int(voice.data["attachments"][0]["id"])]
    assert probe(data).codec == "opus"


# ---- paid is recorded ----


@pytest.mark.parametrize("fault", ["garbage", "break"])
async def test_speech_is_recorded_when_the_vendor_bills_it_even_if_its_audio_then_fails(
    vw: VoiceWorld, fault: Literal["garbage", "break"]
) -> None:
    """ElevenLabs accepted (and charged) the text, then its audio was not audio or broke off:
    nothing is posted, and the usage row says what was paid, with the model used, as failed.
    `/usage` shows the speech in the characters it was billed for, and that it was paid but
    not delivered."""
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    before = len(vw.eleven.tts_calls())
    vw.eleven.audio_fault = fault
    try:
        async with running_bot(world) as bot:
            said = await world.discord.say(world.general, world.alice, "@Lilith tell me more")
            job = await world.delivered(f"{said.id}:lilith")
            await world.discord.wait_until(lambda: len(vw.eleven.tts_calls()) > before)
            await settle(bot)
            shown = await slash_text(world, world.alice, "usage", period="day")
    finally:
        vw.eleven.audio_fault = None
    assert voice_messages(world, world.general) == []
    assert len(vw.eleven.tts_calls()) == before + 1
    assert await speech_usage(vw.database, job.id) == [
        ("eleven_multilingual_v2", len(job.content), True)
    ]
    assert await last_used(world, world.alice, "elevenlabs")  # her key was used
    # Her day's speech so far (this one among them), as the database sums it.
    totals = await speech_totals(vw.database, str(world.alice["id"]))
    requests, characters, failed = totals["eleven_multilingual_v2"]
    assert failed >= 1
    assert characters >= len(job.content)
    assert (
        f"`elevenlabs/eleven_multilingual_v2` (speech): {plural(requests, 'request')}, "
        f"{characters:,} characters, {failed} paid but not delivered"
    ) in shown


async def test_a_whole_speech_is_recorded_with_the_model_used_and_not_failed(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)  # no model: the default's
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith say it all")
        job = await world.delivered(f"{said.id}:lilith")
        await world.discord.wait_until(lambda: voice_messages(world, world.general))
        await settle(bot)
    assert await speech_usage(vw.database, job.id) == [
        ("eleven_multilingual_v2", len(job.content), False)
    ]


async def test_a_speech_cancelled_after_the_vendor_billed_it_stays_recorded(
    vw: VoiceWorld,
) -> None:
    """The vendor is streaming the audio (already billed) when the caller goes away (the bot
    stopped, a deadline): the row is there, failed."""
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith hold that thought")
        job = await world.delivered(f"{said.id}:lilith")
        await settle(bot)
    before = len(vw.eleven.tts_calls())
    vw.eleven.audio_gate = gate = asyncio.Event()
    bot_stub = await world.mesh.gateway_stub("bot")
    call = bot_stub.SpeakAnswer(
        gw.SpeakAnswerRequest(actor=member_actor(world.alice), job_id=job.id)
    )
    reading = asyncio.ensure_future(call.read())
    try:
        await world.discord.wait_until(lambda: len(vw.eleven.tts_calls()) > before)
        for _ in range(200):  # the billed event travels inference → gateway → Postgres
            if await speech_usage(vw.database, job.id):
                break
            await asyncio.sleep(0.05)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await reading
    finally:
        vw.eleven.audio_gate = None
        gate.set()
    assert await speech_usage(vw.database, job.id) == [
        ("eleven_multilingual_v2", len(job.content), True)
    ]


# ---- nothing paid that cannot be delivered ----


def bot_notices(world: World, channel: Json) -> list[str]:
    bot = world.discord.bot_user["id"]
    return [
        m.content
        for m in world.discord.messages.get(int(channel["id"]), [])
        if m.data["author"]["id"] == bot and not m.deleted
    ]


@pytest.mark.parametrize("refusal", ["message deleted", "channel deleted"])
async def test_no_voice_is_paid_for_after_discord_refused_the_answer(
    vw: VoiceWorld, refusal: str
) -> None:
    """Part of the answer was posted, then Discord refused the rest (its message deleted
    mid-stream: 10008; the channel gone: 10003): what was posted is confirmed, nothing is
    spoken. (Discord unreachable after the generation ended: tests/unit/bot.)"""
    world = vw.world
    await give_keys(world, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    # Two messages' worth (its second is a new post), streamed slowly enough to step in.
    world.provider.reply = " ".join(f"word{i}" for i in range(300))
    world.provider.chunk_delay = 0.01
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith a long one")
        (first,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
        if refusal == "message deleted":
            await world.discord.delete_message(first)  # a moderator removes it
            await world.discord.wait_until(lambda: bot_notices(world, world.general))
        else:  # its second message finds the channel gone
            world.discord.fail_next(
                "execute_webhook", 404, {"code": 10003, "message": "Unknown Channel"}
            )
        job = await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)  # the answer handled to its end (and a voice asked for)
        await settle(bot)
    assert job.content  # what was posted is confirmed
    if refusal == "channel deleted":
        assert len(world.discord.webhook_messages(world.general)) == 1  # the rest refused
    assert len(vw.eleven.tts_calls()) == before  # nothing paid for
    assert voice_messages(world, world.general) == []
    assert await speech_usage(vw.database, job.id) == []


async def test_speak_where_no_voice_can_be_posted_is_refused_before_it_is_paid_for(
    vw: VoiceWorld,
) -> None:
    """The bot may send no voice message there and has no webhook to fall back on: Speak
    says so at once, and asks for no speech."""
    world = vw.world
    await give_keys(world, world.bob)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.bob, "@Lilith hello there")
        job = await world.delivered(f"{said.id}:lilith")
        await settle(bot)
    (text,) = world.discord.webhook_messages(world.general)
    world.discord.deny_bot(
        world.general, Permission.SEND_VOICE_MESSAGES | Permission.MANAGE_WEBHOOKS
    )
    before = len(vw.eleven.tts_calls())
    refused = len(world.discord.refusals)
    async with running_bot(world) as bot:  # it starts knowing the channel's permissions
        asked = await world.discord.context_menu(world.general, world.bob, "Speak", text)
        await world.discord.wait_until(lambda: any(asked.texts()))
        await settle(bot)
    told = "".join(asked.texts())
    assert "Send Voice Messages" in told
    assert "Manage Webhooks" in told
    assert len(vw.eleven.tts_calls()) == before  # nothing paid for
    assert await speech_usage(vw.database, job.id) == []
    assert world.discord.refusals[refused:] == []  # nor tried


@pytest.mark.parametrize(
    ("provider", "voice_id", "model", "limit"),
    [("elevenlabs", RACHEL, "eleven_v3", 5_000), ("openai", "nova", "", 4_096)],
)
async def test_a_voice_is_never_sent_more_text_than_its_model_takes(
    vw: VoiceWorld, provider: str, voice_id: str, model: str, limit: int
) -> None:
    """The user's limit and the operator's cap are 10000; eleven_v3 takes 5000 characters a
    request and OpenAI's /audio/speech 4096: the answer is cut to that, and spoken."""
    world = vw.world
    await give_keys(world, world.alice)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(world.alice), provider="openai", api_key=USER_KEY)
    )
    await world.cli.SetPersonalityVoice(
        gw.SetPersonalityVoiceRequest(
            personality="lilith",
            voice=common.VoiceConfig(
                provider=provider, voice_id=voice_id, model=model,
                frequency=common.VOICE_FREQUENCY_ALWAYS,
            ),
        )
    )  # fmt: skip
    world.provider.reply = "This is one sentence of a rather long answer. " * 150
    async with running_bot(world) as bot:
        limited = await slash_text(world, world.alice, "voice", "limit", characters=10_000)
        assert "up to 10000 characters" in limited
        said = await world.discord.say(world.general, world.alice, "@Lilith go on and on")
        job = await world.delivered(f"{said.id}:lilith")
        await world.discord.wait_until(lambda: voice_messages(world, world.general))
        await settle(bot)
    if provider == "elevenlabs":
        spoken = vw.eleven.tts_calls()[-1].body["text"]
    else:
        spoken = world.provider.speech_requests()[-1].body["input"]
    assert len(job.content) > 6_000
    assert limit // 2 < len(spoken) <= limit
    assert job.content.startswith(spoken)
    (row,) = await speech_usage(vw.database, job.id)
    assert row[1:] == (len(spoken), False)


# ---- cloning ----


async def new_personality_with_a_sample(world: World, slug: str) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug=slug, display_name=slug.title(), system_prompt=f"You are {slug}."
            ),
        )
    )
    sample = world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg")
    added = await slash_text(
        world, world.alice, "personality", "voice-sample", "upload",
        personality=slug, file=sample,
    )  # fmt: skip
    assert "Added" in added


async def test_cloning_again_deletes_the_clone_it_replaces_and_no_other_voice(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    deletes = len(vw.eleven.delete_calls())
    async with running_bot(world):
        await new_personality_with_a_sample(world, "wren")
        # A voice set by hand (a default voice): a clone replaces it, never deletes it.
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                personality="wren", voice=common.VoiceConfig(provider="elevenlabs", voice_id=RACHEL)
            )
        )
        for n in range(3):
            cloned = await slash_text(
                world, world.alice, "personality", "voice", "clone", personality="wren"
            )
            assert "Cloned from 1 sample" in cloned
            if n == 0:  # re-tuned by hand, the clone is still known as hers
                shown = await world.cli.GetPersonalityVoice(
                    gw.GetPersonalityVoiceRequest(personality="wren")
                )
                tuned = common.VoiceConfig(
                    provider="elevenlabs", voice_id=shown.voice.voice_id, stability=0.3
                )
                await world.cli.SetPersonalityVoice(
                    gw.SetPersonalityVoiceRequest(personality="wren", voice=tuned)
                )
    made = [v for v in vw.eleven.cloned_voices() if v.name == "Wren"]
    assert len(made) == 1  # one slot of her plan, not three
    voice = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="wren"))
    assert voice.voice.voice_id == made[0].voice_id
    assert voice.voice.stability == pytest.approx(0.3)  # the tuning carried to each new clone
    assert len(vw.eleven.delete_calls()) - deletes == 2  # the two clones replaced
    assert RACHEL in vw.eleven.voices


def our_clones(vw: VoiceWorld, name: str) -> list[FakeVoice]:
    """The clones in her ElevenLabs account made for the personality of that name."""
    return [v for v in vw.eleven.cloned_voices() if v.name == name]


async def test_a_clone_whose_answer_was_lost_leaves_one_voice_after_the_next_clone(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "finch")
        vw.eleven.clone_fault = "drop"  # ElevenLabs makes the voice; its answer never arrives
        try:
            first = await slash_text(
                world, world.alice, "personality", "voice", "clone", personality="finch"
            )
        finally:
            vw.eleven.clone_fault = None
        assert len(our_clones(vw, "Finch")) == 1
        again = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="finch"
        )
    assert "Cloned from 1 sample" in again
    made = our_clones(vw, "Finch")
    assert len(made) == 1  # one slot of her plan, not one per attempt
    voice = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="finch"))
    assert voice.voice.voice_id == made[0].voice_id
    assert "Cloned from 1 sample" in first  # found by its mark, though its answer was lost


async def test_a_clone_gateway_never_stored_is_deleted_by_the_next_clone(vw: VoiceWorld) -> None:
    """Gateway asked, inference answered, and gateway died before storing the voice id."""
    world = vw.world
    await give_keys(world, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "heron")
        heron = await world.cli.GetPersonality(
            gw.GetPersonalityRequest(actor=member_actor(world.alice), personality="heron")
        )
        bot = await world.mesh.gateway_stub("bot")
        user_id = (await bot.GetUser(gw.GetUserRequest(actor=member_actor(world.alice)))).user.id
        inference = inf_grpc.InferenceServiceStub(
            await world.mesh.channel("gateway", target="inference")
        )

        async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
            header = inf.CloneVoiceHeader(
                user_id=user_id,
                name="Heron",
                description="Tzurot personality heron",
                personality_id=heron.personality.id,
            )
            yield inf.CloneVoiceRequest(header=header)
            yield inf.CloneVoiceRequest(
                sample=inf.CloneVoiceSample(filename="a.mp3", data=encode_tone(1.0))
            )

        orphan = (await inference.CloneVoice(parts())).voice_id  # and never stored
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="heron"
        )
    assert "Cloned from 1 sample" in cloned
    made = our_clones(vw, "Heron")
    assert len(made) == 1
    assert orphan not in vw.eleven.voices
    voice = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="heron"))
    assert voice.voice.voice_id == made[0].voice_id


async def test_a_double_click_on_clone_clones_once(vw: VoiceWorld) -> None:
    world = vw.world
    await give_keys(world, world.alice)
    vw.eleven.clone_gate = gate = asyncio.Event()
    try:
        async with running_bot(world):
            await new_personality_with_a_sample(world, "lark")
            clones = len(vw.eleven.clone_calls())
            first = await world.discord.slash(
                world.general, world.alice, "personality", {"personality": "lark"},
                subcommand=("voice", "clone"),
            )  # fmt: skip
            await world.discord.wait_until(lambda: len(vw.eleven.clone_calls()) > clones)
            again = await slash_text(
                world, world.alice, "personality", "voice", "clone", personality="lark"
            )
            gate.set()  # the vendor answers the first one
            await world.discord.wait_until(lambda: any(first.texts()))
    finally:
        vw.eleven.clone_gate = None
        gate.set()
    assert "being cloned already" in again
    assert "Cloned from 1 sample" in "".join(first.texts())
    assert len(vw.eleven.clone_calls()) == clones + 1
    assert len([v for v in vw.eleven.cloned_voices() if v.name == "Lark"]) == 1


async def test_deleting_a_personality_deletes_its_clone_from_her_elevenlabs_account(
    vw: VoiceWorld,
) -> None:
    """`/personality delete` of a personality whose voice she cloned: the warning says the
    clone goes and deletes nothing; confirmed, the clone is deleted from her ElevenLabs
    account with her key, and the personality with it."""
    world = vw.world
    await own_elevenlabs_key(vw, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "avocet")
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="avocet"
        )
        assert "Cloned from 1 sample" in cloned
        (clone,) = our_clones(vw, "Avocet")
        deletes = len(vw.eleven.delete_calls())
        warned = await slash_text(
            world, world.alice, "personality", "delete", personality="avocet", confirm="no"
        )
        assert our_clones(vw, "Avocet") == [clone]  # a warning deletes nothing
        deleted = await slash_text(
            world, world.alice, "personality", "delete", personality="avocet", confirm="DELETE"
        )
    assert "deleted from the ElevenLabs account it was cloned into" in warned
    assert "Deleted **Avocet** (`avocet`) for good" in deleted
    assert [(c.path, c.key_valid) for c in vw.eleven.delete_calls()[deletes:]] == [
        (f"/v1/voices/{clone.voice_id}", True)
    ]
    assert clone.voice_id not in vw.eleven.voices
    gone = await world.cli.ListPersonalities(
        gw.ListPersonalitiesRequest(actor=member_actor(world.alice), owned_only=True)
    )
    assert "avocet" not in [p.slug for p in gone.personalities]


async def test_a_clone_reused_by_hand_survives_and_one_removed_by_hand_goes_with_its_personality(
    vw: VoiceWorld,
) -> None:
    """Review 143, findings 2 and 4: Kestrel's clone reused by hand for Harrier stays in her
    ElevenLabs account when Kestrel is cloned again and when Kestrel is deleted; Kestrel's
    newer clone, removed by hand (`/personality voice remove`), is still Tzurot's to delete:
    deleting Kestrel deletes it, with her key."""
    world = vw.world
    await own_elevenlabs_key(vw, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "kestrel")
        await new_personality_with_a_sample(world, "harrier")
        await slash_text(world, world.alice, "personality", "voice", "clone", personality="kestrel")
        (first,) = our_clones(vw, "Kestrel")
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                personality="harrier",
                voice=common.VoiceConfig(provider="elevenlabs", voice_id=first.voice_id),
            )
        )
        deletes = len(vw.eleven.delete_calls())
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="kestrel"
        )
        assert "Cloned from 1 sample" in cloned
        assert len(vw.eleven.delete_calls()) == deletes  # Harrier's voice: kept
        (second,) = [v for v in our_clones(vw, "Kestrel") if v.voice_id != first.voice_id]
        await slash_text(
            world, world.alice, "personality", "voice", "remove", personality="kestrel"
        )
        deleted = await slash_text(
            world, world.alice, "personality", "delete", personality="kestrel", confirm="DELETE"
        )
    assert "Deleted **Kestrel** (`kestrel`) for good" in deleted
    assert [(c.path, c.key_valid) for c in vw.eleven.delete_calls()[deletes:]] == [
        (f"/v1/voices/{second.voice_id}", True)
    ]
    assert [v.voice_id for v in our_clones(vw, "Kestrel")] == [first.voice_id]
    harrier = await world.cli.GetPersonalityVoice(
        gw.GetPersonalityVoiceRequest(personality="harrier")
    )
    assert harrier.voice.voice_id == first.voice_id
    # The world is shared: leave no clone in her account, nor Harrier, for the next tests.
    await world.cli.DeletePersonality(gw.DeletePersonalityRequest(personality="harrier"))
    vw.eleven.voices.pop(first.voice_id)


async def test_a_clone_marks_her_elevenlabs_key_used_in_wallet_list(vw: VoiceWorld) -> None:
    """The clone is made with her own ElevenLabs key: `/wallet list` then shows it used, as
    it does after a speech (her OpenRouter key, not used, shows no "last used")."""
    world = vw.world
    await give_keys(world, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "ibis")
        before = await world.cli.ListWalletKeys(
            gw.ListWalletKeysRequest(actor=member_actor(world.alice))
        )
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="ibis"
        )
        used = await last_used(world, world.alice, "elevenlabs")
        listed = await slash_text(world, world.alice, "wallet", "list")
    assert "Cloned from 1 sample" in cloned
    assert not any(k.HasField("last_used_at") for k in before.keys)  # nothing used it yet
    assert used
    lines = {line.split("**")[1]: line for line in listed.splitlines() if "**" in line}
    assert ", last used <t:" in lines["elevenlabs"]
    assert "last used" not in lines["openrouter"]


# ---- a key ElevenLabs refuses ----


async def own_elevenlabs_key(
    vw: VoiceWorld, user: Json, permissions: Iterable[str] | None = None
) -> str:
    """Stores an ElevenLabs key of the user's own, valid when stored (her OpenRouter key
    too), restricted to `permissions` when given; revoke it with
    `vw.eleven.valid_keys.discard(key)`."""
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    vw.eleven.add_key(key, permissions=permissions)
    await vw.world.set_key(user)
    await vw.world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(user), provider="elevenlabs", api_key=key)
    )
    return key


async def wallet_lines(world: World, user: Json) -> dict[str, str]:
    """`/wallet list` as the user reads it: each provider's line."""
    listed = await slash_text(world, user, "wallet", "list")
    return {line.split("**")[1]: line for line in listed.splitlines() if "**" in line}


def bot_messages(world: World, channel: Json) -> list[Posted]:
    """What the bot itself posted in `channel` (not through a webhook), oldest first."""
    bot = str(world.discord.bot_user["id"])
    return [
        m
        for m in world.discord.messages.get(int(channel["id"]), [])
        if not m.webhook_id and not m.deleted and m.data["author"]["id"] == bot
    ]


async def spoken_with_a_refusal(vw: VoiceWorld, key: str) -> tuple[Posted, str]:
    """Alice talks to Lilith, who always speaks, and ElevenLabs refuses the speech (`key`
    is hers): the notice the bot posts under the text about the voice message that does not
    come, and `/wallet list`'s elevenlabs line."""
    world = vw.world
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    before = len(vw.eleven.tts_calls())
    async with running_bot(world) as bot:
        await slash_text(world, world.alice, "voice", "reset")
        said = await world.discord.say(world.general, world.alice, "@Lilith read this out")
        job = await world.delivered(f"{said.id}:lilith")
        (notice,) = await world.discord.wait_until(lambda: bot_messages(world, world.general))
        await settle(bot)
        lines = await wallet_lines(world, world.alice)
    assert len(vw.eleven.tts_calls()) == before + 1  # asked once, refused
    (text,) = world.discord.webhook_messages(world.general)
    assert text.content.endswith(job.content)  # the text was delivered anyway
    assert voice_messages(world, world.general) == []
    assert await speech_usage(vw.database, job.id) == []  # nothing billed
    assert notice.id > text.id
    assert notice.data["message_reference"]["message_id"] == str(text.id)
    assert not any(world.discord.pings[notice.id])  # her name shown, nobody notified
    assert key not in notice.content
    assert ": active" in lines["openrouter"]
    return notice, lines["elevenlabs"]


async def test_a_reply_spoken_with_a_revoked_elevenlabs_key_tells_her_and_turns_it_inactive(
    vw: VoiceWorld,
) -> None:
    """She revoked her key in ElevenLabs: the answer is posted, its speech refused (401
    `invalid_api_key`, as ElevenLabs answers); right after the answer the bot tells her there
    is no voice message because ElevenLabs rejected her key, and to store a new one, and
    `/wallet list` says the key is inactive; her OpenRouter key stays active."""
    world = vw.world
    key = await own_elevenlabs_key(vw, world.alice)
    vw.eleven.valid_keys.discard(key)  # revoked at ElevenLabs
    notice, line = await spoken_with_a_refusal(vw, key)
    assert not vw.eleven.tts_calls()[-1].key_valid
    assert notice.content == (
        f"-# No voice message for <@{world.alice['id']}>: elevenlabs rejected your API key; "
        "store a new one with `/wallet set elevenlabs`."
    )
    assert "inactive: elevenlabs rejected it; store a new one with /wallet set" in line


async def test_a_reply_spoken_with_a_key_lacking_text_to_speech_tells_her_and_keeps_it_active(
    vw: VoiceWorld,
) -> None:
    """Her key may manage voices but not speak (restricted in ElevenLabs without
    `text_to_speech`): the bot tells her under the answer which permission her key lacks and
    what to do, nothing is billed, and the key stays active (it works for the rest)."""
    world = vw.world
    key = await own_elevenlabs_key(vw, world.alice, permissions=["voices_read", "voices_write"])
    notice, line = await spoken_with_a_refusal(vw, key)
    assert [c.missing_permission for c in vw.eleven.tts_calls()[-1:]] == ["text_to_speech"]
    assert notice.content == (
        f"-# No voice message for <@{world.alice['id']}>: your elevenlabs key lacks the "
        "`text_to_speech` permission; allow it for the key in ElevenLabs, or store another "
        "key with `/wallet set elevenlabs`."
    )
    assert ": active" in line
    assert "inactive" not in line


async def test_a_reply_spoken_with_no_characters_left_tells_her_and_keeps_the_key_active(
    vw: VoiceWorld,
) -> None:
    """Her ElevenLabs month is used up (429 `quota_exceeded`): she is told under the answer,
    nothing is billed, and the key stays active."""
    world = vw.world
    key = await own_elevenlabs_key(vw, world.alice)
    vw.eleven.character_quota = 0
    try:
        notice, line = await spoken_with_a_refusal(vw, key)
    finally:
        vw.eleven.character_quota = None
    assert notice.content == (
        f"-# No voice message for <@{world.alice['id']}>: your elevenlabs account has no "
        "characters left this month; raise its plan in ElevenLabs, or store another key "
        "with `/wallet set elevenlabs`."
    )
    assert ": active" in line
    assert "inactive" not in line


async def test_speak_with_a_revoked_elevenlabs_key_tells_her_and_turns_it_inactive(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    key = await own_elevenlabs_key(vw, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith hello there")
        await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        (text,) = world.discord.webhook_messages(world.general)
        vw.eleven.valid_keys.discard(key)  # revoked at ElevenLabs
        asked = await world.discord.context_menu(world.general, world.alice, "Speak", text)
        await world.discord.wait_until(lambda: any(asked.texts()))
        await settle(bot)
        lines = await wallet_lines(world, world.alice)
    told = "".join(asked.texts())
    assert "elevenlabs refused the API key" in told
    assert "/wallet set elevenlabs" in told
    assert voice_messages(world, world.general) == []
    assert "inactive: elevenlabs rejected it" in lines["elevenlabs"]
    assert ": active" in lines["openrouter"]


async def test_a_clone_with_a_revoked_elevenlabs_key_tells_her_and_turns_it_inactive(
    vw: VoiceWorld,
) -> None:
    world = vw.world
    key = await own_elevenlabs_key(vw, world.alice)
    async with running_bot(world):
        await new_personality_with_a_sample(world, "plover")
        vw.eleven.valid_keys.discard(key)  # revoked at ElevenLabs
        clones = len(vw.eleven.clone_calls())
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="plover"
        )
        lines = await wallet_lines(world, world.alice)
    assert [c.key_valid for c in vw.eleven.clone_calls()[clones:]] == [False]
    assert "elevenlabs refused the API key" in cloned
    assert "/wallet set elevenlabs" in cloned
    assert our_clones(vw, "Plover") == []
    assert "inactive: elevenlabs rejected it" in lines["elevenlabs"]
    assert ": active" in lines["openrouter"]


async def test_a_refusal_that_is_not_about_the_key_leaves_it_active(vw: VoiceWorld) -> None:
    """Her month's characters are used up (ElevenLabs' 429 `quota_exceeded`) and her plan's
    voice slots are full (400 `voice_limit_reached`): she is told, and the key stays active."""
    world = vw.world
    await own_elevenlabs_key(vw, world.alice)
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    async with running_bot(world) as bot:
        await new_personality_with_a_sample(world, "shrike")
        said = await world.discord.say(world.general, world.alice, "@Lilith hello there")
        await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        (text,) = world.discord.webhook_messages(world.general)
        vw.eleven.character_quota, vw.eleven.voice_limit = 0, 0
        try:
            asked = await world.discord.context_menu(world.general, world.alice, "Speak", text)
            await world.discord.wait_until(lambda: any(asked.texts()))
            await settle(bot)
            cloned = await slash_text(
                world, world.alice, "personality", "voice", "clone", personality="shrike"
            )
        finally:
            vw.eleven.character_quota, vw.eleven.voice_limit = None, 10
        lines = await wallet_lines(world, world.alice)
    assert "no characters left" in "".join(asked.texts())
    assert "as many custom voices as its plan allows" in cloned
    assert ": active" in lines["elevenlabs"]
    assert "inactive" not in lines["elevenlabs"]


# ---- a key restricted without what a call needs ----


async def test_a_clone_with_a_key_lacking_voices_write_says_so_and_keeps_it_active(
    vw: VoiceWorld,
) -> None:
    """Her key is restricted in ElevenLabs to reading voices and speaking: `/wallet set`
    takes it (listing voices proves it), and a clone tells her the permission her key needs
    (`voices_write`), not that it was rejected; `/wallet list` keeps it active."""
    world = vw.world
    await own_elevenlabs_key(vw, world.alice, permissions=["voices_read", "text_to_speech"])
    async with running_bot(world):
        await new_personality_with_a_sample(world, "kestrel")
        clones = len(vw.eleven.clone_calls())
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="kestrel"
        )
        lines = await wallet_lines(world, world.alice)
    assert [c.missing_permission for c in vw.eleven.clone_calls()[clones:]] == ["voices_write"]
    assert cloned == (
        "your elevenlabs key lacks the `voices_write` permission this needs; allow it for the "
        "key in ElevenLabs, or store a key that has it with /wallet set elevenlabs"
    )
    assert our_clones(vw, "Kestrel") == []
    assert ": active" in lines["elevenlabs"]
    assert "inactive" not in lines["elevenlabs"]


async def wallet_set_through_discord(world: World, user: Json, provider: str, key: str) -> str:
    """`/wallet set <provider>` as she does it: the command opens the private form, she pastes
    the key; what the bot answered."""
    opened = await world.discord.slash(
        world.general, user, "wallet", {"provider": provider}, subcommand=["set"]
    )
    await world.discord.wait_until(opened.modal)
    submitted = await world.discord.submit_modal(opened, user, {"api_key": key})
    await world.discord.wait_until(lambda: any(submitted.texts()), within=30)
    assert submitted.is_ephemeral()
    seen = opened.texts() + submitted.texts() + [str(r) for r in submitted.responses]
    assert not any(key in said for said in seen)  # the key never comes back
    return "".join(submitted.texts())


TTS_ONLY_SAVED = (
    "ElevenLabs restricts this key: it lacks `voices_read`, so listing your ElevenLabs voices "
    "(how Tzurot finds and cleans up a clone whose answer got lost) won't work with it. The "
    "rest works if the key has its permission: `text_to_speech` for spoken answers, "
    "`voices_write` for cloning a voice. Allow what it lacks for the key in ElevenLabs, or "
    "store another key with `/wallet set elevenlabs`."
)


async def test_a_key_restricted_to_text_to_speech_is_stored_speaks_and_cannot_clone(
    vw: VoiceWorld,
) -> None:
    """She made her ElevenLabs key least-privilege, restricted to text to speech: it cannot
    read her voice list, which is how a key is proven (ElevenLabs authenticates it, then
    answers 401 `missing_permissions` naming `voices_read`). `/wallet set elevenlabs` stores it
    all the same and tells her what it lacks and what that stops, never the key; Lilith's
    answer is then spoken with it; a clone with it tells her the permission it lacks
    (`voices_write`, as before); `/wallet test` says it works, restricted; it stays active."""
    world = vw.world
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    vw.eleven.add_key(key, permissions=["text_to_speech"])
    await world.set_key(world.alice)  # her OpenRouter key, for the answer itself
    await lilith_speaks(world, common.VOICE_FREQUENCY_ALWAYS)
    async with running_bot(world) as bot:
        saved = await wallet_set_through_discord(world, world.alice, "elevenlabs", key)
        assert saved == (
            f"Saved your elevenlabs key (…{key[-4:]}). It is stored encrypted.\n{TTS_ONLY_SAVED}"
        )
        await slash_text(world, world.alice, "voice", "reset")
        said = await world.discord.say(world.general, world.alice, "@Lilith read this out")
        job = await world.delivered(f"{said.id}:lilith")
        (voice,) = await world.discord.wait_until(lambda: voice_messages(world, world.general))
        await settle(bot)
        await new_personality_with_a_sample(world, "merlin")
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="merlin"
        )
        tested = await slash_text(world, world.alice, "wallet", "test", provider="elevenlabs")
        lines = await wallet_lines(world, world.alice)
    # Spoken with her key: ElevenLabs took the text from it (billed), the voice was posted.
    check_voice_file(world, voice.data["attachments"][0], job.content)
    spoken = [c for c in vw.eleven.calls_with(key) if c.path.startswith("/v1/text-to-speech/")]
    assert [(c.key_valid, c.missing_permission, c.body["text"]) for c in spoken] == [
        (True, "", job.content)
    ]
    assert await speech_usage(vw.database, job.id) == [
        ("eleven_multilingual_v2", len(job.content), False)
    ]
    # The clone: refused for `voices_write` (its lookup of lost clones, for `voices_read`).
    assert cloned == (
        "your elevenlabs key lacks the `voices_write` permission this needs; allow it for the "
        "key in ElevenLabs, or store a key that has it with /wallet set elevenlabs"
    )
    posted = [c for c in vw.eleven.calls_with(key) if c.method == "POST"]
    assert [(c.path, c.missing_permission) for c in posted[-1:]] == [
        ("/v1/voices/add", "voices_write")
    ]
    assert our_clones(vw, "Merlin") == []
    assert tested == f"Your elevenlabs key works.\n{TTS_ONLY_SAVED}"
    assert ": active" in lines["elevenlabs"]
    assert "inactive" not in lines["elevenlabs"]
    assert all(key not in text for text in (saved, cloned, tested, *lines.values()))


async def test_a_key_elevenlabs_does_not_authenticate_is_not_stored(vw: VoiceWorld) -> None:
    """An ElevenLabs key ElevenLabs does not know (401 `invalid_api_key`) is refused by
    `/wallet set elevenlabs` as before: not saved, and she is told why, never the key."""
    world = vw.world
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"  # never added to the fake: unknown there
    async with running_bot(world):
        before = await world.cli.ListWalletKeys(
            gw.ListWalletKeysRequest(actor=member_actor(world.bob))
        )
        told = await wallet_set_through_discord(world, world.bob, "elevenlabs", key)
        after = await world.cli.ListWalletKeys(
            gw.ListWalletKeysRequest(actor=member_actor(world.bob))
        )
    assert told == "Your elevenlabs key was not saved: the key was rejected by elevenlabs"
    assert [c.key_valid for c in vw.eleven.calls_with(key)] == [False]
    assert [(k.provider, k.hint) for k in after.keys] == [(k.provider, k.hint) for k in before.keys]


async def test_speak_with_a_key_lacking_text_to_speech_says_so_and_keeps_it_active(
    vw: VoiceWorld,
) -> None:
    """Her key may manage voices but not speak: Speak tells her the permission her key needs
    (`text_to_speech`), nothing is billed or posted, and the key stays active."""
    world = vw.world
    await own_elevenlabs_key(vw, world.alice, permissions=["voices_read", "voices_write"])
    await lilith_speaks(world, common.VOICE_FREQUENCY_ON_REQUEST)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith hello there")
        job = await world.delivered(f"{said.id}:lilith")
        await settle(bot)
        (text,) = world.discord.webhook_messages(world.general)
        before = len(vw.eleven.tts_calls())
        asked = await world.discord.context_menu(world.general, world.alice, "Speak", text)
        await world.discord.wait_until(lambda: any(asked.texts()))
        await settle(bot)
        lines = await wallet_lines(world, world.alice)
    told = "".join(asked.texts())
    assert told == (
        "your elevenlabs key lacks the `text_to_speech` permission this needs; allow it for "
        "the key in ElevenLabs, or store a key that has it with /wallet set elevenlabs"
    )
    assert [c.missing_permission for c in vw.eleven.tts_calls()[before:]] == ["text_to_speech"]
    assert voice_messages(world, world.general) == []
    assert await speech_usage(vw.database, job.id) == []  # nothing billed
    assert ": active" in lines["elevenlabs"]
    assert "inactive" not in lines["elevenlabs"]
