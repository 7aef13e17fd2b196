"""`/model set|reset|show` at each level of the LLM config cascade, through the fake Discord
and the whole mesh: the model in the provider's request follows user-per-personality → user
default → channel → personality → global, and the channel level needs Manage Channels,
checked by the gateway."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, member_actor, running_bot
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


async def config_ids(world: World, user: dict[str, Any]) -> dict[str, str]:
    listed = await world.cli.ListLlmConfigs(gw.ListLlmConfigsRequest(actor=member_actor(user)))
    return {c.name: c.id for c in listed.configs}


async def model_of(world: World, channel: dict[str, Any], user: dict[str, Any], text: str) -> str:
    said = await world.discord.say(channel, user, f"@Lilith {text}")
    await world.delivered(f"{said.id}:lilith")
    return str(world.provider.chat_requests()[-1].body["model"])


async def model(
    world: World, user: dict[str, Any], sub: str, permissions: str = "0", **options: str
) -> str:
    done = await world.discord.slash(
        world.general,
        user,
        "model",
        {"personality": "lilith", **options},
        subcommand=[sub],
        permissions=permissions,
    )
    return await answered(world, done)


async def test_each_level_of_the_cascade_picks_the_model_the_provider_is_asked_for(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    elsewhere = world.discord.add_channel(world.guild, "elsewhere")
    async with running_bot(world):
        for name in ("alice everywhere", "alice choice"):
            created = await world.discord.slash(
                world.general,
                world.alice,
                "llm-config",
                {"name": name, "provider": "openrouter", "model": "fake/" + name.split()[1]},
                subcommand=["create"],
            )
            assert "Created" in await answered(world, created)
        ids = await config_ids(world, world.alice)
        shared = ids["sage default"]  # a global config (Sage's seed made it)

        assert await model_of(world, world.general, world.alice, "one") == "fake/lilith"

        refused = await model(world, world.bob, "set", config=shared, level="channel")
        assert "needs the Manage Channels permission" in refused
        personal = await model(
            world, world.alice, "set", MANAGE_CHANNELS, config=ids["alice choice"], level="channel"
        )
        assert "is a personal config" in personal
        assert await model_of(world, world.general, world.bob, "still") == "fake/lilith"
        here = await model(
            world, world.alice, "set", MANAGE_CHANNELS, config=shared, level="channel"
        )
        assert "from this channel" in here
        assert await model_of(world, world.general, world.bob, "two") == "fake/sage"
        assert await model_of(world, elsewhere, world.bob, "not here") == "fake/lilith"

        mine = await model(
            world, world.alice, "set", config=ids["alice everywhere"], level="default"
        )
        assert "from your default" in mine
        assert await model_of(world, world.general, world.alice, "three") == "fake/everywhere"
        assert await model_of(world, world.general, world.bob, "bob") == "fake/sage"

        chosen = await model(world, world.alice, "set", config=ids["alice choice"])
        assert "from your choice for this personality" in chosen
        assert await model_of(world, world.general, world.alice, "four") == "fake/choice"
        shown = await model(world, world.alice, "show")

        await model(world, world.alice, "reset")
        assert await model_of(world, world.general, world.alice, "five") == "fake/everywhere"
        await model(world, world.alice, "reset", level="default")
        assert await model_of(world, world.general, world.alice, "six") == "fake/sage"
        not_yours = await model(world, world.bob, "reset", level="channel")
        assert "needs the Manage Channels permission" in not_yours
        back = await model(world, world.alice, "reset", MANAGE_CHANNELS, level="channel")
        assert "from the personality's default" in back
        assert await model_of(world, world.general, world.alice, "seven") == "fake/lilith"
    lines = shown.splitlines()
    assert "**alice choice** (`openrouter/fake/choice`), from your choice" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == [
        "✅ your choice for this personality",
        "▫️ your default",
        "▫️ this channel",
        "▫️ the personality's default",
        "▫️ global default",
    ]


async def test_the_gateway_refuses_a_channel_model_without_the_permission(world: World) -> None:
    """No internal caller sets a channel's model for an actor without Manage Channels."""
    bot = await world.mesh.gateway_stub("bot")
    shared = (await config_ids(world, world.bob))["sage default"]
    where = common.Location(guild_id=world.guild["id"], channel_id=world.general["id"])
    request = gw.SetModelOverrideRequest(
        actor=member_actor(world.bob),
        personality="lilith",
        config_id=shared,
        scope=common.CONFIG_SOURCE_CHANNEL,
        location=where,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bot.SetModelOverride(request)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    request.scope = common.CONFIG_SOURCE_GLOBAL
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await bot.SetModelOverride(request)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    shown = await bot.GetEffectiveConfig(
        gw.GetEffectiveConfigRequest(actor=request.actor, personality="lilith", location=where)
    )
    assert [level.source for level in shown.levels] == [
        common.CONFIG_SOURCE_PERSONALITY,
        common.CONFIG_SOURCE_GLOBAL,
    ]
    assert shown.effective.config.model == "fake/lilith"
