"""/skills list|show|enable|disable: what personalities can do besides answering.

The operator decides which skills exist (inference's configuration); a personality's owner
enables some of them for it (gateway checks ownership and the names). Each command
acknowledges first (Discord's 3 s deadline; the gateway may take longer) and then edits its
ephemeral answer; the skill autocomplete answers within the shared budget, from its cache
when the gateway is slow (`lookups`).
"""

from __future__ import annotations

from collections.abc import Iterable

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, choices, defer, failure_text, reply, send
from tzurot.bot.commands.lookups import cached_values, personality_choices
from tzurot.bot.commands.options import PersonalityName
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def render_available(skills: list[common.SkillInfo]) -> str:
    if not skills:
        return "No skills are available here."
    lines = ["**Skills** (enable one with `/skills enable`):"]
    for skill in skills:
        notes = [
            n for n, on in (("stealth", skill.stealth), ("remembers", skill.auto_memorize)) if on
        ]
        extra = f" _({', '.join(notes)})_" if notes else ""
        lines.append(f"- `{skill.name}`{extra}: {skill.description}")
    return "\n".join(lines)


def _used(skills: Iterable[str]) -> str:
    return ", ".join(f"`{s}`" for s in skills) or "none"


def unchanged_text(p: common.Personality, skill: str, *, enable: bool) -> str:
    """`/skills enable` of a skill it uses already, or `disable` of one it does not use."""
    state = "already uses" if enable else "does not use"
    return f"**{p.display_name}** {state} `{skill}`; nothing changed. It uses: {_used(p.skills)}"


class SkillCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="skills", description="Skills: what personalities can do")
        self.gateway = gateway

    async def _available(self) -> list[common.SkillInfo]:
        reply = await self.gateway.call(
            self.gateway.stub.ListAvailableSkills(gw.ListAvailableSkillsRequest())
        )
        return list(reply.skills)

    async def _personality(self, interaction: discord.Interaction, name: str) -> common.Personality:
        reply = await self.gateway.call(
            self.gateway.stub.GetPersonality(
                gw.GetPersonalityRequest(actor=actor(interaction), personality=name)
            )
        )
        return reply.personality

    @app_commands.command(name="list", description="The skills personalities can use here")
    async def list_skills(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListAvailableSkills(gw.ListAvailableSkillsRequest()),
            lambda r: render_available(list(r.skills)),
        )

    @app_commands.command(name="show", description="The skills a personality uses")
    @app_commands.describe(personality="The personality whose skills to show")
    async def show(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetPersonality(
                gw.GetPersonalityRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: f"**{r.personality.display_name}** uses: {_used(r.personality.skills)}",
        )

    @app_commands.command(name="enable", description="Let a personality you own use a skill")
    @app_commands.describe(
        personality="A personality you own", skill="A skill from /skills list, e.g. web_research"
    )
    async def enable(
        self, interaction: discord.Interaction, personality: PersonalityName, skill: str
    ) -> None:
        await self._change(interaction, personality, skill, enable=True)

    @app_commands.command(name="disable", description="Stop a personality you own using a skill")
    @app_commands.describe(personality="A personality you own", skill="The skill it stops using")
    async def disable(
        self, interaction: discord.Interaction, personality: PersonalityName, skill: str
    ) -> None:
        await self._change(interaction, personality, skill, enable=False)

    @show.autocomplete("personality")
    @enable.autocomplete("personality")
    @disable.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    @enable.autocomplete("skill")
    @disable.autocomplete("skill")
    async def _skill_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        async def fetch() -> list[str]:
            return [s.name for s in await self._available()]

        return choices(await cached_values("skills", interaction, fetch), current)

    async def _change(
        self, interaction: discord.Interaction, personality: str, skill: str, *, enable: bool
    ) -> None:
        await defer(interaction)  # two gateway calls: acknowledge within Discord's 3 s first
        try:
            found = await self._personality(interaction, personality)
            if (skill in found.skills) == enable:  # nothing to change: said so, not "now"
                await send(interaction, unchanged_text(found, skill, enable=enable))
                return
            skills = [s for s in found.skills if s != skill]
            if enable:
                skills.append(skill)
            changed = common.Personality(id=found.id, skills=skills)
            updated = await self.gateway.call(
                self.gateway.stub.UpdatePersonality(
                    gw.UpdatePersonalityRequest(
                        actor=actor(interaction), personality=changed, update_paths=["skills"]
                    )
                )
            )
            now = updated.personality
            text = f"**{now.display_name}** now uses: {_used(now.skills)}"
        except TzurotError as err:
            text = failure_text(err)
        await send(interaction, text)
