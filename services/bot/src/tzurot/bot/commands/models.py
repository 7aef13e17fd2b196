"""/llm-config create|list|delete and /model set|reset."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import PROVIDERS, actor, choices, reply
from tzurot.bot.commands.lookups import config_choices, personality_choices
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class LlmConfigCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="llm-config", description="Your model configurations")
        self.gateway = gateway

    @app_commands.command(name="create", description="A named provider + model to pick later")
    async def create(
        self,
        interaction: discord.Interaction,
        name: str,
        provider: str,
        model: str,
        description: str = "",
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


class ModelCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="model", description="Which model a personality uses for you")
        self.gateway = gateway

    @app_commands.command(name="set", description="Use one of your configs with a personality")
    async def set_model(
        self, interaction: discord.Interaction, personality: str, config: str
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetModelOverride(
                gw.SetModelOverrideRequest(
                    actor=actor(interaction), personality=personality, config_id=config
                )
            ),
            lambda r: render.effective(personality, r.effective),
        )

    @app_commands.command(name="reset", description="Back to the personality's default model")
    async def reset(self, interaction: discord.Interaction, personality: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ResetModelOverride(
                gw.ResetModelOverrideRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: render.effective(personality, r.effective),
        )

    @set_model.autocomplete("personality")
    @reset.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    @set_model.autocomplete("config")
    async def _configs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await config_choices(self.gateway, interaction, current)
