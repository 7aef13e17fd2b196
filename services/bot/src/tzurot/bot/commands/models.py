"""/llm-config create|list|delete and /model set|reset|show."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import (
    NO_CHANNEL_IN_DM,
    PROVIDERS,
    actor,
    choices,
    in_dm,
    reply,
    send,
)
from tzurot.bot.commands.lookups import config_choices, personality_choices
from tzurot.bot.commands.names import named_reply
from tzurot.bot.commands.options import (
    ConfigDescription,
    ModelName,
    NewName,
    PersonalityName,
    ProviderName,
)
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class LlmConfigCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="llm-config", description="Your model configurations")
        self.gateway = gateway

    @app_commands.command(name="create", description="A named provider + model to pick later")
    @app_commands.describe(
        name="What to call it, to pick it by later",
        provider="Who serves the model, e.g. openrouter, openai, anthropic, gemini, ollama",
        model="The model's id at that provider, e.g. openai/gpt-4o-mini on openrouter",
        description="A note on what it is for (optional)",
    )
    async def create(
        self,
        interaction: discord.Interaction,
        name: NewName,
        provider: ProviderName,
        model: ModelName,
        description: ConfigDescription = "",
    ) -> None:
        config = common.LlmConfig(
            name=name, provider=provider, model=model, description=description
        )
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.CreateLlmConfig(
                gw.CreateLlmConfigRequest(actor=actor(interaction), config=config)
            ),
            lambda r: f"Created **{r.config.name}** (`{r.config.provider}/{r.config.model}`).",
        )

    @create.autocomplete("provider")
    async def _providers(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(list(PROVIDERS), current)

    @app_commands.command(name="list", description="Configs you can use")
    async def list_configs(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListLlmConfigs(
                gw.ListLlmConfigsRequest(actor=actor(interaction))
            ),
            lambda r: render.llm_configs(list(r.configs)),
        )

    @app_commands.command(name="delete", description="Delete one of your configs")
    @app_commands.describe(config="One of your configs (from /llm-config list)")
    async def delete(self, interaction: discord.Interaction, config: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.DeleteLlmConfig(
                gw.DeleteLlmConfigRequest(actor=actor(interaction), config_id=config)
            ),
            lambda _: "Deleted.",
        )

    @delete.autocomplete("config")
    async def _configs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await config_choices(self.gateway, interaction, current)


MODEL_LEVELS = {
    "personality": ("you, with this personality", common.CONFIG_SOURCE_USER_PERSONALITY),
    "default": ("your default, every personality", common.CONFIG_SOURCE_USER),
    "channel": ("this channel, for everyone (Manage Channels)", common.CONFIG_SOURCE_CHANNEL),
}
LEVEL_CHOICES = [
    app_commands.Choice(name=label, value=value) for value, (label, _) in MODEL_LEVELS.items()
]


def _scope(level: str) -> common.ConfigSource.ValueType:
    return MODEL_LEVELS.get(level, MODEL_LEVELS["personality"])[1]


class ModelCommands(app_commands.Group):
    """Which model answers: yours toward one personality, your default, a channel's (set by
    someone who may manage it), then the personality's and the global default."""

    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="model", description="Which model a personality uses for you")
        self.gateway = gateway

    @app_commands.command(
        name="set", description="Use a config with a personality, everywhere, or here"
    )
    @app_commands.choices(level=LEVEL_CHOICES)
    @app_commands.describe(
        personality="Level personality: the one it is for; else whose model here the reply shows",
        config="A config from /llm-config list (a shared one for level channel)",
        level="You with this personality (the default), your default, or this channel for everyone",
    )
    async def set_model(
        self,
        interaction: discord.Interaction,
        personality: PersonalityName,
        config: str,
        level: str = "personality",
    ) -> None:
        if level == "channel" and in_dm(interaction):
            await send(interaction, NO_CHANNEL_IN_DM)
            return
        request = gw.SetModelOverrideRequest(
            actor=actor(interaction),
            personality=personality,
            config_id=config,
            scope=_scope(level),
            location=location_of(interaction.channel, interaction.guild),
            manage_channels=bool(interaction.permissions.manage_channels),
        )
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.SetModelOverride(request),
            lambda r, name: render.effective(name, r.effective),
        )

    @app_commands.command(name="reset", description="Forget a model choice at one level")
    @app_commands.choices(level=LEVEL_CHOICES)
    @app_commands.describe(
        personality="Level personality: the one it was for; else whose model here the reply shows",
        level="The level whose choice to forget (default: you with this personality)",
    )
    async def reset(
        self,
        interaction: discord.Interaction,
        personality: PersonalityName,
        level: str = "personality",
    ) -> None:
        if level == "channel" and in_dm(interaction):
            await send(interaction, NO_CHANNEL_IN_DM)
            return
        request = gw.ResetModelOverrideRequest(
            actor=actor(interaction),
            personality=personality,
            scope=_scope(level),
            location=location_of(interaction.channel, interaction.guild),
            manage_channels=bool(interaction.permissions.manage_channels),
        )
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.ResetModelOverride(request),
            lambda r, name: render.effective(name, r.effective),
        )

    @app_commands.command(
        name="show", description="Which model a personality uses for you here, and why"
    )
    @app_commands.describe(personality="The personality whose model to show")
    async def show(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.GetEffectiveConfig(
                gw.GetEffectiveConfigRequest(
                    actor=actor(interaction),
                    personality=personality,
                    location=location_of(interaction.channel, interaction.guild),
                )
            ),
            lambda r, name: render.model_levels(name, r),
        )

    @set_model.autocomplete("personality")
    @reset.autocomplete("personality")
    @show.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    @set_model.autocomplete("config")
    async def _configs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await config_choices(self.gateway, interaction, current)
