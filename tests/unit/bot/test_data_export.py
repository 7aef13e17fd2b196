"""`/settings data export part:<n>`: the option (a part number, 1 unless given), the request
that carries it, and the reply naming the part, how many there are and how to get the next;
a part past the last shows the gateway's words."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from discord.enums import AppCommandOptionType, InteractionResponseType

from tzurot.bot.commands import render
from tzurot.bot.commands.account import DataCommands
from tzurot.bot.commands.misc import HELP
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import gateway_pb2 as gw

_ids = itertools.count(time.time_ns())
"""Interaction ids unique across test modules: the bot remembers, process-wide, which deferred
interactions it has edited (`commands.common._edited`), as Discord's ids are unique."""


class Stub:
    """The gateway's ExportUserData: records each request, answers `reply` (or raises it)."""

    def __init__(self, reply: gw.ExportUserDataResponse | Exception) -> None:
        self.reply = reply
        self.requests: list[gw.ExportUserDataRequest] = []

    async def ExportUserData(self, request: gw.ExportUserDataRequest) -> Any:
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


class Response:
    def __init__(self) -> None:
        self.deferred = False
        self.type = InteractionResponseType.deferred_channel_message

    async def defer(self, **_: Any) -> None:
        self.deferred = True

    def is_done(self) -> bool:
        return self.deferred


class Interaction:
    """What the command reads of a Discord interaction, recording what it answers."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.user = SimpleNamespace(id=42, display_name="Alice")
        self.response = Response()
        self.filesize_limit = 10 * 1024 * 1024
        self.edits: list[dict[str, Any]] = []
        self.followup = SimpleNamespace(send=self._followup)
        self.followups: list[dict[str, Any]] = []

    async def edit_original_response(self, **kwargs: Any) -> None:
        self.edits.append(kwargs)

    async def _followup(self, *args: Any, **kwargs: Any) -> None:
        self.followups.append(kwargs)


async def export(reply: gw.ExportUserDataResponse | Exception, **options: Any) -> tuple[Stub, Any]:
    stub = Stub(reply)
    group = DataCommands(GatewayClient(cast(Any, stub), generate_timeout=5))
    interaction = Interaction()
    callback: Any = group.export.callback  # as discord.py calls it: the group, then options
    await callback(group, interaction, **options)
    return stub, interaction


def test_the_part_is_an_optional_whole_number_from_1() -> None:
    group = DataCommands(
        GatewayClient(cast(Any, Stub(gw.ExportUserDataResponse())), generate_timeout=5)
    )
    (part,) = group.export.parameters
    assert (part.name, part.type, part.required, part.default, part.min_value) == (
        "part",
        AppCommandOptionType.integer,
        False,
        1,
        1,
    )
    assert 0 < len(part.description) <= 100  # Discord refuses a longer option description


async def test_the_part_asked_for_is_sent_and_the_reply_names_it_and_the_next() -> None:
    reply = gw.ExportUserDataResponse(archive=b"zip", filename="x-part2of3.zip", part=2, parts=3)
    stub, interaction = await export(reply, part=2)
    assert [r.part for r in stub.requests] == [2]
    (edit,) = interaction.edits
    assert edit["content"] == (
        "Your data, part 2 of 3: more of the audio, images and CHARX cards part 1 had no room "
        "for. Get the next with `/settings data export part:3`."
    )
    (file,) = edit["attachments"]
    assert file.filename == "x-part2of3.zip"


async def test_without_a_part_it_asks_for_part_1() -> None:
    stub, interaction = await export(gw.ExportUserDataResponse(archive=b"zip", part=1, parts=1))
    assert [r.part for r in stub.requests] == [1]
    assert interaction.edits[0]["content"] == "Your data:"


async def test_a_part_past_the_last_shows_the_gateways_words() -> None:
    refused = InvalidArgument(
        "part", "your export has 2 parts: there is no part 5; ask for part 1 to 2"
    )
    _, interaction = await export(refused, part=5)
    (edit,) = interaction.edits
    assert edit["content"] == "your export has 2 parts: there is no part 5; ask for part 1 to 2"
    assert "attachments" not in edit


@pytest.mark.parametrize(
    ("part", "parts", "text"),
    [
        (1, 1, "Your data:"),
        (0, 0, "Your data:"),  # a gateway that knows no parts
        (
            1,
            2,
            "Your data, part 1 of 2: everything but the audio, images and CHARX cards it had no "
            "room for. Get the next with `/settings data export part:2`.",
        ),
        (
            3,
            3,
            "Your data, part 3 of 3: more of the audio, images and CHARX cards part 1 had no "
            "room for. That is the last part.",
        ),
    ],
)
def test_the_heading_says_which_part_and_how_to_get_the_next(
    part: int, parts: int, text: str
) -> None:
    assert render.data_export(part, parts) == text


def test_help_names_the_part_option_and_still_fits_one_message() -> None:
    assert "`/settings data export|delete`" in HELP
    assert "`export part:2`" in HELP
    assert len(HELP) <= 2000  # `send` cuts at Discord's 2000 characters
