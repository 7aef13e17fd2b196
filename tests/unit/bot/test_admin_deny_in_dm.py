"""`/admin deny add` run in a DM with the bot (review 355 L3): a channel or guild scope with no
`scope_id` has no channel or server to take, so it is answered with why not before any gateway
call, not added as an entry for the DM's own channel (which no message in a server matches).
With a `scope_id` it names the place itself and is sent as anywhere else."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from discord.enums import InteractionResponseType

from tzurot.bot.commands.admin import NO_SERVER_IN_DM, DenyCommands
from tzurot.bot.commands.common import NO_CHANNEL_IN_DM
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import gateway_pb2 as gw

_ids = itertools.count(time.time_ns())
"""Interaction ids unique across test modules: the bot remembers, process-wide, which deferred
interactions it has edited (`commands.common._edited`), as Discord's ids are unique."""
DM_CHANNEL = 555000000000000001
GUILD = 777000000000000001
CHANNEL = 777000000000000002
USER = SimpleNamespace(id=4242)


class Stub:
    """The gateway's AddDenylistEntry: records each request, adds what it is sent."""

    def __init__(self) -> None:
        self.added: list[gw.DenylistEntry] = []

    async def AddDenylistEntry(self, request: gw.AddDenylistEntryRequest) -> Any:
        self.added.append(request.entry)
        entry = gw.DenylistEntry()
        entry.CopyFrom(request.entry)
        entry.id = "e1"
        return gw.AddDenylistEntryResponse(entry=entry)


class Response:
    def __init__(self) -> None:
        self.done = False
        self.type: InteractionResponseType | None = None
        self.messages: list[str] = []

    def is_done(self) -> bool:
        return self.done

    async def defer(self, **_: Any) -> None:
        self.done, self.type = True, InteractionResponseType.deferred_channel_message

    async def send_message(self, content: str, **_: Any) -> None:
        self.done = True
        self.messages.append(content)


class Interaction:
    """What `/admin deny add` reads of an interaction: in a DM, no guild and the DM's channel."""

    def __init__(self, *, guild_id: int | None, channel_id: int) -> None:
        self.id = next(_ids)
        self.user = SimpleNamespace(id=42, display_name="Root")
        self.guild_id, self.channel_id = guild_id, channel_id
        self.channel = SimpleNamespace(id=channel_id)
        self.response = Response()
        self.edits: list[str] = []

    async def edit_original_response(self, **kwargs: Any) -> None:
        self.edits.append(str(kwargs.get("content")))

    def texts(self) -> list[str]:
        return [*self.response.messages, *self.edits]


async def add(interaction: Interaction, **options: Any) -> Stub:
    stub = Stub()
    group = DenyCommands(GatewayClient(cast(Any, stub), generate_timeout=5))
    callback: Any = group.add.callback  # as discord.py calls it: the group, then options
    await callback(group, interaction, user=USER, **options)
    return stub


@pytest.mark.parametrize(
    ("scope", "said"), [("channel", NO_CHANNEL_IN_DM), ("guild", NO_SERVER_IN_DM)]
)
async def test_a_channel_or_guild_scope_taken_from_a_dm_is_refused_before_any_call(
    scope: str, said: str
) -> None:
    interaction = Interaction(guild_id=None, channel_id=DM_CHANNEL)
    stub = await add(interaction, scope=scope)
    assert stub.added == []
    assert interaction.texts() == [said]


@pytest.mark.parametrize("scope", ["channel", "guild"])
async def test_in_a_dm_a_scope_named_by_its_id_is_added(scope: str) -> None:
    interaction = Interaction(guild_id=None, channel_id=DM_CHANNEL)
    stub = await add(interaction, scope=scope, scope_id=str(CHANNEL))
    (entry,) = stub.added
    assert entry.scope_id == str(CHANNEL)
    (text,) = interaction.texts()
    assert text.startswith("Added: ")


@pytest.mark.parametrize("scope", ["bot", "personality"])
async def test_in_a_dm_a_scope_of_no_place_is_added(scope: str) -> None:
    interaction = Interaction(guild_id=None, channel_id=DM_CHANNEL)
    personality = "lilith" if scope == "personality" else ""
    stub = await add(interaction, scope=scope, personality=personality)
    (entry,) = stub.added
    assert entry.scope_id == personality


@pytest.mark.parametrize(("scope", "taken"), [("channel", CHANNEL), ("guild", GUILD)])
async def test_in_a_server_the_scope_is_taken_from_where_it_is_run(scope: str, taken: int) -> None:
    interaction = Interaction(guild_id=GUILD, channel_id=CHANNEL)
    stub = await add(interaction, scope=scope)
    (entry,) = stub.added
    assert entry.scope_id == str(taken)
