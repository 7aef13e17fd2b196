"""/memory search|prune|stats: what a personality remembers about you."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import gateway_pb2 as gw


class MemoryCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="memory", description="What a personality remembers about you")
        self.gateway = gateway

    @app_commands.command(name="search", description="Find memories")
    async def search(self, interaction: discord.Interaction, personality: str, query: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SearchMemories(
                gw.SearchMemoriesRequest(
                    actor=actor(interaction), personality=personality, query=query, limit=10
                )
            ),
            render.memories,
        )

    @app_commands.command(name="prune", description="Delete weak memories")
    async def prune(
        self,
        interaction: discord.Interaction,
        personality: str,
        threshold: app_commands.Range[float, 0.0, 1.0] = 0.2,
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.PruneMemories(
                gw.PruneMemoriesRequest(
                    actor=actor(interaction), personality=personality, threshold=threshold
                )
            ),
            lambda r: f"Deleted {r.deleted} memories.",
        )

    @app_commands.command(name="stats", description="How many memories, of which kind")
    async def stats(self, interaction: discord.Interaction, personality: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetMemoryStats(
                gw.GetMemoryStatsRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: render.memory_stats(r, personality),
        )

    @search.autocomplete("personality")
    @prune.autocomplete("personality")
    @stats.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
