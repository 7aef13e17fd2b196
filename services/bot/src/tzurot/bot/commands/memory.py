"""/memory search|browse|delete|prune|stats|incognito|fresh: what a personality remembers
about you."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import memory_choices, personality_choices
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import gateway_pb2 as gw


class MemoryCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="memory", description="What a personality remembers about you")
        self.gateway = gateway

    @app_commands.command(name="search", description="Find memories")
    @app_commands.describe(
        personality="The personality whose memories of you to search",
        query="What to look for",
    )
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

    @app_commands.command(
        name="browse", description="Your memories, newest first, a page at a time"
    )
    @app_commands.describe(
        personality="The personality whose memories of you to show",
        page="Which page of ten: 1 (the newest, the default), 2 and on",
    )
    async def browse(
        self,
        interaction: discord.Interaction,
        personality: str,
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.BrowseMemories(
                gw.BrowseMemoriesRequest(
                    actor=actor(interaction), personality=personality, page=page
                )
            ),
            lambda r: render.memory_page(r, personality),
        )

    @app_commands.command(name="delete", description="Delete one memory")
    @app_commands.describe(
        personality="The personality that remembers it",
        memory="The memory to delete (your newest ones autocomplete)",
    )
    async def delete(self, interaction: discord.Interaction, personality: str, memory: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ForgetMemory(
                gw.ForgetMemoryRequest(
                    actor=actor(interaction), personality=personality, memory_id=memory
                )
            ),
            lambda r: f"Deleted: {r.memory.text[:300]}",
        )

    @delete.autocomplete("memory")
    async def _memories(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        personality = str(getattr(interaction.namespace, "personality", "") or "")
        if not personality:
            return []
        return await memory_choices(self.gateway, interaction, personality, current)

    @app_commands.command(name="prune", description="Delete weak memories")
    @app_commands.describe(
        personality="The personality whose memories of you to prune",
        threshold="Delete memories whose salience (strength, 0-1) is below this; "
        "the default is 0.2",
    )
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
    @app_commands.describe(personality="The personality whose memories of you to count")
    async def stats(self, interaction: discord.Interaction, personality: str) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetMemoryStats(
                gw.GetMemoryStatsRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: render.memory_stats(r, personality),
        )

    @app_commands.command(
        name="incognito", description="Nothing you say is remembered long-term while on"
    )
    @app_commands.choices(state=[app_commands.Choice(name=s, value=s) for s in ("on", "off")])
    @app_commands.describe(
        personality="The personality it applies to",
        state="on: nothing you say to it is remembered long-term; off: remembered again",
        hours="With on: how long, 1-720 hours (default 24)",
    )
    async def incognito(
        self,
        interaction: discord.Interaction,
        personality: str,
        state: str,
        hours: app_commands.Range[int, 1, 720] = 24,
    ) -> None:
        on = state == "on"
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetIncognito(
                gw.SetIncognitoRequest(
                    actor=actor(interaction), personality=personality, on=on, hours=hours
                )
            ),
            lambda r: (
                f"Incognito with {personality} until {render.discord_time(r.incognito_until)}: "
                "nothing you say is remembered long-term."
                if r.HasField("incognito_until")
                else f"Incognito is off: {personality} remembers again."
            ),
        )

    @app_commands.command(name="fresh", description="Older memories are no longer used")
    @app_commands.describe(
        personality="The personality it applies to",
        undo="True: use all its memories of you again",
    )
    async def fresh(
        self, interaction: discord.Interaction, personality: str, undo: bool = False
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.StartFresh(
                gw.StartFreshRequest(actor=actor(interaction), personality=personality, undo=undo)
            ),
            lambda r: (
                f"A fresh start with {personality}: memories from before "
                f"{render.discord_time(r.fresh_since)} are not used."
                if r.HasField("fresh_since")
                else f"{personality} uses all its memories of you again."
            ),
        )

    @search.autocomplete("personality")
    @browse.autocomplete("personality")
    @delete.autocomplete("personality")
    @prune.autocomplete("personality")
    @stats.autocomplete("personality")
    @incognito.autocomplete("personality")
    @fresh.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
