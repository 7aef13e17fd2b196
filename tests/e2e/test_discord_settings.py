"""/settings view|set|reset through the fake Discord and the whole mesh: a setting changes what
is posted, the channel level needs Manage Channels (checked by the gateway), names and values
autocomplete."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e
MANAGE_CHANNELS = str(1 << 4)


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def test_model_footer_shows_the_model_under_the_answer_not_in_history(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        first = await world.discord.say(world.general, world.alice, "@Lilith no footer yet")
        await world.delivered(f"{first.id}:lilith")
        done = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "model_footer", "value": "on"},
            subcommand=["set"],
        )
        assert "`model_footer`: now **on** (your default)" in await answered(world, done)
        second = await world.discord.say(world.general, world.alice, "@Lilith now with one")
        await world.delivered(f"{second.id}:lilith")
        third = await world.discord.say(world.general, world.alice, "@Lilith and again")
        await world.delivered(f"{third.id}:lilith")
    without, with_footer, _ = world.discord.webhook_messages(world.general)
    assert "-# openrouter" not in without.content
    assert with_footer.content.endswith("\n-# openrouter/fake/lilith")
    history = world.provider.chat_requests()[-1].body["messages"]
    assert not any("-# openrouter" in str(m["content"]) for m in history)


async def test_a_channel_setting_needs_manage_channels_and_applies_to_everyone_there(
    world: World,
) -> None:
    await world.set_key(world.bob)
    async with running_bot(world):
        refused = await world.discord.slash(
            world.general,
            world.bob,
            "settings",
            {"key": "model_footer", "value": "true", "level": "channel"},
            subcommand=["set"],
        )
        assert "needs the Manage Channels permission" in await answered(world, refused)
        said = await world.discord.say(world.general, world.bob, "@Lilith first")
        await world.delivered(f"{said.id}:lilith")
        allowed = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "model_footer", "value": "true", "level": "channel"},
            subcommand=["set"],
            permissions=MANAGE_CHANNELS,
        )
        assert "now **on** (this channel)" in await answered(world, allowed)
        said = await world.discord.say(world.general, world.bob, "@Lilith second")
        await world.delivered(f"{said.id}:lilith")
        viewed = await world.discord.slash(
            world.general, world.bob, "settings", subcommand=["view"]
        )
        view = await answered(world, viewed)
        reset = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "model_footer", "level": "channel"},
            subcommand=["reset"],
            permissions=MANAGE_CHANNELS,
        )
        assert "now **off** (built-in default)" in await answered(world, reset)
    before, after = world.discord.webhook_messages(world.general)
    assert "-# openrouter" not in before.content  # Bob's refused write stored nothing
    assert after.content.endswith("\n-# openrouter/fake/lilith")
    assert "`model_footer` = **on** (this channel)" in view


async def test_the_gateway_refuses_a_channel_write_without_the_permission(world: World) -> None:
    """No internal caller writes a channel's settings for an actor without Manage Channels."""
    bot = await world.mesh.gateway_stub("bot")
    request = gw.SetSettingRequest(
        actor=common.Actor(user_id=world.bob["id"], display_name="bob"),
        scope=common.CONFIG_SOURCE_CHANNEL,
        location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
        key="max_history_messages",
        value=struct_pb2.Value(number_value=1),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bot.SetSetting(request)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    shown = await bot.GetSettings(
        gw.GetSettingsRequest(actor=request.actor, location=request.location)
    )
    (history,) = [s for s in shown.settings if s.key == "max_history_messages"]
    assert history.source != common.CONFIG_SOURCE_CHANNEL


async def test_setting_names_and_values_autocomplete(world: World) -> None:
    async with running_bot(world):
        keys = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "foot", "value": ""},
            subcommand=["set"],
            focused="key",
        )
        await world.discord.wait_until(keys.choices)
        values = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "voice_mode", "value": ""},
            subcommand=["set"],
            focused="value",
        )
        await world.discord.wait_until(values.choices)
        bad = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "memory_limit", "value": "many"},
            subcommand=["set"],
        )
        refusal = await answered(world, bad)
    assert [c["value"] for c in keys.choices()] == ["model_footer"]
    assert [c["value"] for c in values.choices()] == ["off", "auto", "always"]
    assert "memory_limit must be a whole number" in refusal


async def test_a_typed_value_too_long_for_a_choice_is_not_offered_cut(world: World) -> None:
    """What was typed goes as typed; a suggestion cut to Discord's 100 characters would send
    another value once picked."""

    async def offered(typed: str) -> FakeInteraction:
        typing = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "max_history_messages", "value": typed},
            subcommand=["set"],
            focused="value",
        )
        await world.discord.wait_until(lambda: typing.acknowledged)
        return typing

    async with running_bot(world):
        whole, longer = await offered("7" * 100), await offered("7" * 101)
    assert [c["value"] for c in whole.choices()] == ["7" * 100]
    assert longer.responses[0]["type"] == 8  # answered, with nothing to pick
    assert longer.choices() == []
