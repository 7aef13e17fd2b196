"""Discord's 3-second interaction deadline, against the strict fake: every command that calls
the backend acknowledges first and edits its original response; autocomplete answers in time
from a cache; files respect the interaction's `attachment_size_limit`."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from typing import Any

import pytest

from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
)
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e
SLOW = 4.0  # longer than Discord's 3 s


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(t for t in interaction.texts()), within=30)
    return "\n".join(t for t in interaction.texts() if t)


def deferred_then_edited(interaction: FakeInteraction) -> bool:
    kinds = [r.get("type") for r in interaction.responses]
    return kinds[:2] == [5, "edit"] and interaction.deprecated_followups == 0


class SlowGateway(RecordingGateway):
    """The real gateway behind a delay of `SLOW` seconds on reads a command makes."""

    async def GetPersonality(self, request: gw.GetPersonalityRequest, context: Any) -> Any:
        await asyncio.sleep(SLOW)
        return await super().GetPersonality(request, context)

    async def ListPersonalities(self, request: gw.ListPersonalitiesRequest, context: Any) -> Any:
        await asyncio.sleep(SLOW)
        return await super().ListPersonalities(request, context)


class SlowSkillsAndLore(SlowGateway):
    """Also `/skills` and `/lorebook export`'s calls, each `SLOW` seconds late."""

    async def ListAvailableSkills(
        self, request: gw.ListAvailableSkillsRequest, context: Any
    ) -> Any:
        await asyncio.sleep(SLOW)
        return await self.upstream.ListAvailableSkills(request)

    async def UpdatePersonality(self, request: gw.UpdatePersonalityRequest, context: Any) -> Any:
        await asyncio.sleep(SLOW)
        return await self.upstream.UpdatePersonality(request)

    async def ExportLorebook(self, request: gw.ExportLorebookRequest, context: Any) -> Any:
        await asyncio.sleep(SLOW)
        return await self.upstream.ExportLorebook(request)


async def test_a_slow_backend_still_meets_the_deadline_by_deferring(world: World) -> None:
    async with (
        recording_gateway(world, SlowGateway) as (_, client),
        running_bot(world, gateway=client),
    ):
        refused = len(world.discord.refusals)
        viewed = await world.discord.slash(
            world.general, world.alice, "character", {"personality": "Lilith"}, subcommand=["view"]
        )
        text = await answered(world, viewed)
    assert "**Lilith**" in text
    assert deferred_then_edited(viewed)
    assert viewed.is_ephemeral()
    assert world.discord.refusals[refused:] == []  # no 10062: the defer came within 3 s


async def test_autocomplete_answers_within_the_deadline_then_from_the_cache(
    world: World,
) -> None:
    async with (
        recording_gateway(world, SlowGateway) as (_, client),
        running_bot(world, gateway=client),
    ):
        refused = len(world.discord.refusals)
        first = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "li"},
            subcommand=["view"],
            focused="personality",
        )
        await world.discord.wait_until(lambda: first.responses, within=10)
        assert first.choices() == []  # the backend was too slow: nothing rather than too late
        await asyncio.sleep(SLOW)  # the late answer fills the cache
        second = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "li"},
            subcommand=["view"],
            focused="personality",
        )
        await world.discord.wait_until(lambda: second.responses, within=10)
    assert [c["name"] for c in second.choices()] == ["Lilith"]
    assert world.discord.refusals[refused:] == []


async def test_skills_commands_defer_then_edit_with_a_slow_backend(world: World) -> None:
    """`/skills list|show|enable|disable` acknowledge before the gateway answers; enable and
    disable (two calls, the second a write) still tell the owner what was saved."""
    offered = await world.cli.ListAvailableSkills(gw.ListAvailableSkillsRequest())
    skill = offered.skills[0].name
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug="quill", display_name="Quill", system_prompt="You are Quill."
            ),
        )
    )
    async with (
        recording_gateway(world, SlowSkillsAndLore) as (_, client),
        running_bot(world, gateway=client),
    ):
        refused = len(world.discord.refusals)
        slash = world.discord.slash
        listed, shown, enabled = await asyncio.gather(
            slash(world.general, world.alice, "skills", subcommand=["list"]),
            slash(
                world.general, world.alice, "skills", {"personality": "Lilith"}, subcommand=["show"]
            ),
            slash(
                world.general,
                world.alice,
                "skills",
                {"personality": "quill", "skill": skill},
                subcommand=["enable"],
            ),
        )
        assert f"`{skill}`" in await answered(world, listed)
        assert "**Lilith** uses:" in await answered(world, shown)
        assert f"**Quill** now uses: `{skill}`" in await answered(world, enabled)
        disabled = await slash(
            world.general,
            world.alice,
            "skills",
            {"personality": "quill", "skill": skill},
            subcommand=["disable"],
        )
        assert "**Quill** now uses: none" in await answered(world, disabled)
    for asked in (listed, shown, enabled, disabled):
        assert deferred_then_edited(asked), asked.responses
        assert asked.is_ephemeral()
    assert world.discord.refusals[refused:] == []  # no 10062: each deferred within 3 s


async def test_the_skill_autocomplete_answers_in_time_then_from_the_cache(world: World) -> None:
    offered = await world.cli.ListAvailableSkills(gw.ListAvailableSkillsRequest())
    async with (
        recording_gateway(world, SlowSkillsAndLore) as (_, client),
        running_bot(world, gateway=client),
    ):
        refused = len(world.discord.refusals)

        async def typed() -> FakeInteraction:
            asked = await world.discord.slash(
                world.general,
                world.alice,
                "skills",
                {"personality": "Lilith", "skill": ""},
                subcommand=["enable"],
                focused="skill",
            )
            await world.discord.wait_until(lambda: asked.responses, within=10)
            return asked

        first = await typed()
        assert first.choices() == []  # the backend was too slow: nothing rather than too late
        await asyncio.sleep(SLOW)  # the late answer fills the cache
        second = await typed()
    assert [c["name"] for c in second.choices()] == [s.name for s in offered.skills][:25]
    assert world.discord.refusals[refused:] == []


async def test_lorebook_export_defers_then_attaches_with_a_slow_backend(world: World) -> None:
    document = b'{"entries": {"0": {"key": ["tavern"], "content": "The Prancing Pony."}}}'
    await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(
            actor=member_actor(world.alice), document=document, name="Slow notes"
        )
    )
    async with (
        recording_gateway(world, SlowSkillsAndLore) as (_, client),
        running_bot(world, gateway=client),
    ):
        refused = len(world.discord.refusals)
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"lorebook": "Slow notes"},
            subcommand=["export"],
        )
        text = await answered(world, exported)
        missing = await world.discord.slash(
            world.general, world.alice, "lorebook", {"lorebook": "nothing"}, subcommand=["export"]
        )
        await answered(world, missing)
    assert ".json`" in text
    (file,) = exported.files
    assert b"The Prancing Pony." in file
    assert deferred_then_edited(exported)
    assert deferred_then_edited(missing)  # a failure is an edit of the acknowledgement too
    assert exported.is_ephemeral()
    assert world.discord.refusals[refused:] == []


async def test_a_lorebook_too_large_to_attach_is_said_not_refused(world: World) -> None:
    document = b'{"entries": {"0": {"key": ["gate"], "content": "The gate is shut."}}}'
    await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(actor=member_actor(world.alice), document=document, name="Gates")
    )
    async with running_bot(world):
        refused = len(world.discord.refusals)
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"lorebook": "Gates"},
            subcommand=["export"],
            attachment_size_limit=16,
        )
        text = await answered(world, exported)
    assert "more than Discord lets me attach" in text
    assert exported.files == []
    assert world.discord.refusals[refused:] == []  # no 413: nothing too large was sent


async def test_inspect_and_data_delete_defer_then_edit(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hi")
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        await answered(world, inspected)
        erased = await world.discord.slash(
            world.general,
            world.bob,
            "settings",
            {"confirm": "DELETE"},
            subcommand=["data", "delete"],
        )
        assert "Erased" in await answered(world, erased)
    assert deferred_then_edited(inspected)
    assert deferred_then_edited(erased)


async def test_an_export_larger_than_the_attachment_limit_comes_in_pieces(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "x" * 1500
    refused = len(world.discord.refusals)
    uploaded = len(world.discord.uploads)  # the module's world kept earlier tests' files
    async with running_bot(world):
        for i in range(3):
            said = await world.discord.say(world.general, world.alice, f"@Lilith tell me {i}")
            await world.delivered(f"{said.id}:lilith")
        limit = 1024
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            subcommand=["data", "export"],
            attachment_size_limit=limit,
        )
        text = await answered(world, exported)
        assert "smaller pieces" in text
        count = int(re.search(r"comes in (\d+) smaller pieces", text).group(1))  # type: ignore[union-attr]
        await world.discord.wait_until(lambda: len(world.discord.uploads) - uploaded == count)
    pieces = list(world.discord.uploads[uploaded:])
    assert all(len(p) <= limit for p in pieces)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.namelist()  # the pieces join back into the zip
    assert world.discord.refusals[refused:] == []  # nothing was too large for Discord
