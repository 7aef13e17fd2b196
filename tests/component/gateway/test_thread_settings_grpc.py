"""Channel settings in threads, over real mTLS gRPC on real Postgres: a thread's channel level
is its own values over its parent channel's, key by key. A moderator's voice_mode=off on a
channel holds in every thread under it (answers are not spoken, Speak is refused), a group
setting of the channel holds there too, and a value the thread sets itself wins."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

ALICE = g.ACTOR
CHANNEL = g.WHERE
THREAD = common.Location(guild_id="guild-1", channel_id="channel-1", thread_id="thread-1")
ELSEWHERE = common.Location(guild_id="guild-1", channel_id="channel-2")


def text(value: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=value)


def number(value: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=value)


async def set_channel(stub: Any, where: common.Location, key: str, value: Any) -> None:
    """As a moderator (the operator here) sets it with /settings set level:channel."""
    await stub.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL, location=where, key=key, value=value
        )
    )


async def generate(stub: Any, where: common.Location, key: str) -> gw.GenerationFinished:
    replies = await g.drain(
        stub.Generate(
            gw.GenerateRequest(
                actor=ALICE,
                location=where,
                personality="lilith",
                content="Sing to me",
                idempotency_key=key,
                message_ids=[key],
            )
        )
    )
    finished: gw.GenerationFinished = replies[-1].finished
    return finished


async def speak(stub: Any, message_id: str) -> None:
    async for _ in stub.SpeakAnswer(gw.SpeakAnswerRequest(actor=ALICE, message_id=message_id)):
        pass


async def test_voice_off_on_a_channel_holds_in_its_threads(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await cli.SetPersonalityVoice(
        gw.SetPersonalityVoiceRequest(
            personality="lilith",
            voice=common.VoiceConfig(
                provider="elevenlabs", voice_id="rachel", frequency=common.VOICE_FREQUENCY_ALWAYS
            ),
        )
    )
    await set_channel(cli, CHANNEL, "voice_mode", text("off"))

    assert (await generate(bot, ELSEWHERE, "m-elsewhere")).speak is True  # she speaks
    assert (await generate(bot, CHANNEL, "m-channel")).speak is False
    in_thread = await generate(bot, THREAD, "m-thread")
    assert in_thread.speak is False  # the parent channel's "off" holds in its thread
    # Speak on the thread's answer is refused as in the channel, before any synthesis.
    await bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=in_thread.job_id, message_ids=["a-thread"])
    )
    error = await g.rpc_error(speak(bot, "a-thread"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert from_rpc_error(error).reason == "VOICE_OFF"

    # The thread's own level wins over its parent's: voice back on in this thread only.
    await set_channel(cli, THREAD, "voice_mode", text("auto"))
    assert (await generate(bot, THREAD, "m-thread-2")).speak is True
    assert (await generate(bot, CHANNEL, "m-channel-2")).speak is False


async def test_settings_in_a_thread_fall_back_to_its_parent_channel_key_by_key(
    connect: Connect,
) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await set_channel(cli, CHANNEL, "voice_mode", text("off"))
    await set_channel(cli, CHANNEL, "max_images", number(4))
    await set_channel(cli, THREAD, "max_images", number(2))
    got = await bot.GetSettings(
        gw.GetSettingsRequest(actor=ALICE, personality="lilith", location=THREAD)
    )
    by_key = {s.key: s for s in got.settings}
    assert (by_key["voice_mode"].value.string_value, by_key["voice_mode"].source) == (
        "off",
        common.CONFIG_SOURCE_CHANNEL,
    )
    assert (by_key["max_images"].value.number_value, by_key["max_images"].source) == (
        2,
        common.CONFIG_SOURCE_CHANNEL,
    )
    # Another channel's thread has nothing of this channel's.
    other = await bot.GetSettings(
        gw.GetSettingsRequest(
            actor=ALICE,
            personality="lilith",
            location=common.Location(guild_id="guild-1", channel_id="channel-2", thread_id="t-2"),
        )
    )
    assert {s.key: s.source for s in other.settings}["voice_mode"] == (
        common.CONFIG_SOURCE_HARDCODED
    )


async def test_a_channels_group_settings_hold_in_its_threads(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    for name in ("lilith", "sage"):
        await g.import_seed(cli, name)
        await cli.ActivateChannel(gw.ActivateChannelRequest(location=CHANNEL, personality=name))
    await set_channel(cli, CHANNEL, "group_max_speakers", number(1))
    plan = await bot.PlanChannelReply(
        gw.PlanChannelReplyRequest(
            actor=ALICE, location=THREAD, content="Lilith and Sage, hello", message_id="h-1"
        )
    )
    assert len(plan.speakers) == 1  # the channel's cap, not the default of two
