"""/memory search|browse|delete|prune|stats|incognito|fresh: what a personality remembers
about you. `prune` and `delete` delete only from a personality named by its slug
(`chosen.py`); `delete` names its memory by id, which the gateway finds only among that
personality's."""

from __future__ import annotations

from datetime import UTC, datetime

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.chosen import CANNOT_UNDO, act_on_chosen, exact, in_code, named, with_slug
from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import (
    memory_choices,
    personality_choices,
    personality_slug_choices,
)
from tzurot.bot.commands.names import named_reply
from tzurot.bot.commands.options import MemoryId, MemoryQuery, PersonalityName, PruneThreshold
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import gateway_pb2 as gw

PRUNE_BELOW = 0.2
"""`/memory prune`'s default threshold: memories weaker than this are deleted."""


def incognito_text(
    r: gw.SetIncognitoResponse, name: str, *, before: gw.GetMemoryStatsResponse | None = None
) -> str:
    """What `/memory incognito` did; switched off, against the modes `before` (if read):
    off already is said so, not as if it had just been switched off."""
    if r.HasField("incognito_until"):
        return (
            f"Incognito with {name} until {render.discord_time(r.incognito_until)}: "
            "nothing you say is remembered long-term."
        )
    if before is not None and not _incognito_on(before):
        return f"Incognito was not on with {name}; it remembers as before."
    return f"Incognito is off: {name} remembers again."


def fresh_text(
    r: gw.StartFreshResponse, name: str, *, before: gw.GetMemoryStatsResponse | None = None
) -> str:
    """What `/memory fresh` did; undone, against the modes `before` (if read)."""
    if r.HasField("fresh_since"):
        return (
            f"A fresh start with {name}: memories from before "
            f"{render.discord_time(r.fresh_since)} are not used."
        )
    if before is not None and not before.HasField("fresh_since"):
        return f"There was no fresh start with {name}; it already uses all its memories of you."
    return f"{name} uses all its memories of you again."


def _incognito_on(stats: gw.GetMemoryStatsResponse) -> bool:
    """Incognito with an end still to come (one past is kept until changed, but no longer
    holds)."""
    return stats.HasField("incognito_until") and (
        stats.incognito_until.ToDatetime(UTC) > datetime.now(UTC)
    )


class MemoryCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="memory", description="What a personality remembers about you")
        self.gateway = gateway

    @app_commands.command(name="search", description="Find memories")
    @app_commands.describe(
        personality="The personality whose memories of you to search",
        query="What to look for",
    )
    async def search(
        self, interaction: discord.Interaction, personality: PersonalityName, query: MemoryQuery
    ) -> None:
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
        personality: PersonalityName,
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.BrowseMemories(
                gw.BrowseMemoriesRequest(
                    actor=actor(interaction), personality=personality, page=page
                )
            ),
            render.memory_page,
        )

    @app_commands.command(name="delete", description="Delete one memory")
    @app_commands.describe(
        personality="The personality that remembers it",
        memory="The memory to delete (your newest ones autocomplete)",
    )
    async def delete(
        self, interaction: discord.Interaction, personality: PersonalityName, memory: MemoryId
    ) -> None:
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Nothing deleted",
            why=CANNOT_UNDO,
            again=lambda p: with_slug("/memory delete", p, f" and `memory: {in_code(memory)}`"),
            rpc=lambda p: self.gateway.stub.ForgetMemory(
                gw.ForgetMemoryRequest(
                    actor=actor(interaction), personality=exact(p), memory_id=memory
                )
            ),
            render=lambda r, p: f"Deleted from {named(p)}'s memories: {r.memory.text[:300]}",
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
        threshold="Delete memories whose salience (strength, 0.01-1) is below this; "
        "the default is 0.2",
    )
    async def prune(
        self,
        interaction: discord.Interaction,
        personality: PersonalityName,
        threshold: PruneThreshold = PRUNE_BELOW,
    ) -> None:
        more = "" if threshold == PRUNE_BELOW else f" and `threshold: {threshold:g}`"
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Nothing deleted",
            why=CANNOT_UNDO,
            again=lambda p: with_slug("/memory prune", p, more),
            rpc=lambda p: self.gateway.stub.PruneMemories(
                gw.PruneMemoriesRequest(
                    actor=actor(interaction), personality=exact(p), threshold=threshold
                )
            ),
            render=lambda r, _: f"Deleted {plural(r.deleted, 'memory', 'memories')}.",
        )

    @app_commands.command(name="stats", description="How many memories, of which kind")
    @app_commands.describe(personality="The personality whose memories of you to count")
    async def stats(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.GetMemoryStats(
                gw.GetMemoryStatsRequest(actor=actor(interaction), personality=personality)
            ),
            render.memory_stats,
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
        personality: PersonalityName,
        state: str,
        hours: app_commands.Range[int, 1, 720] = 24,
    ) -> None:
        on = state == "on"

        async def switched() -> tuple[gw.GetMemoryStatsResponse | None, gw.SetIncognitoResponse]:
            # Switching off: was it on? (SetIncognitoResponse is the same either way.)
            before = None if on else await self._modes(interaction, personality)
            return before, await self.gateway.stub.SetIncognito(
                gw.SetIncognitoRequest(
                    actor=actor(interaction), personality=personality, on=on, hours=hours
                )
            )

        await named_reply(
            interaction,
            self.gateway,
            personality,
            switched,
            lambda r, name: incognito_text(r[1], name, before=r[0]),
        )

    @app_commands.command(name="fresh", description="Older memories are no longer used")
    @app_commands.describe(
        personality="The personality it applies to",
        undo="True: use all its memories of you again",
    )
    async def fresh(
        self, interaction: discord.Interaction, personality: PersonalityName, undo: bool = False
    ) -> None:

        async def started() -> tuple[gw.GetMemoryStatsResponse | None, gw.StartFreshResponse]:
            # Undoing: was there a fresh start? (StartFreshResponse is the same either way.)
            before = await self._modes(interaction, personality) if undo else None
            return before, await self.gateway.stub.StartFresh(
                gw.StartFreshRequest(actor=actor(interaction), personality=personality, undo=undo)
            )

        await named_reply(
            interaction,
            self.gateway,
            personality,
            started,
            lambda r, name: fresh_text(r[1], name, before=r[0]),
        )

    async def _modes(
        self, interaction: discord.Interaction, personality: str
    ) -> gw.GetMemoryStatsResponse | None:
        """The memory modes in force (GetMemoryStats), or None when they cannot be read."""
        try:
            return await self.gateway.call(
                self.gateway.stub.GetMemoryStats(
                    gw.GetMemoryStatsRequest(actor=actor(interaction), personality=personality)
                )
            )
        except TzurotError:
            return None

    @prune.autocomplete("personality")
    @delete.autocomplete("personality")
    async def _personality_slugs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # By slug: these act only on a personality named by its slug (chosen.py).
        return await personality_slug_choices(self.gateway, interaction, current)

    @search.autocomplete("personality")
    @browse.autocomplete("personality")
    @stats.autocomplete("personality")
    @incognito.autocomplete("personality")
    @fresh.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
