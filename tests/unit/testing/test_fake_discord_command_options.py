"""The fake Discord on the option fields whose values Discord checks against a list
(`channel_types`, `file_types`), and on the pairs it leaves unchecked (`min_*` above `max_*`,
two choices alike), each as Discord answers them. Over raw HTTP, as test_fake_discord_commands."""

from __future__ import annotations

import pytest

from tests.unit.testing.test_fake_discord_commands import (
    INTEGER,
    NUMBER,
    accepted,
    commands_http,
    opt,
    refused_at,
    slash,
)

CHANNEL, ATTACHMENT = 7, 11


# ---- channel_types: channel type numbers ----


async def test_channel_types_take_every_documented_channel_type() -> None:
    async with commands_http() as http:
        every = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16]  # 16: GUILD_MEDIA, as discord.py
        await accepted(http, slash(options=[opt(kind=CHANNEL, channel_types=every)]))
        await accepted(http, slash(options=[opt(kind=CHANNEL, channel_types=[])]))
        await accepted(http, slash(options=[opt(kind=CHANNEL, channel_types=["0"])]))  # as int


@pytest.mark.parametrize("value", [6, 9, 17, -1, "text", 1.5, None, True])
async def test_a_channel_type_outside_discords_list_is_refused(value: object) -> None:
    async with commands_http() as http:
        option = opt(kind=CHANNEL, channel_types=[0, value])
        answer = await http.put([slash(options=[option])])
        assert refused_at(answer, 0, "options", 0, "channel_types", 1) == ["ENUM_TYPE_COERCE"]
        assert http.fake.synced_commands == {}


async def test_channel_types_must_be_an_array() -> None:
    async with commands_http() as http:
        answer = await http.put([slash(options=[opt(kind=CHANNEL, channel_types=0)])])
        assert refused_at(answer, 0, "options", 0, "channel_types") == ["BASE_TYPE_ARRAY"]


# ---- file_types: a group name or a dot-prefixed extension, at most 10 ----


async def test_file_types_take_the_groups_and_dotted_extensions() -> None:
    async with commands_http() as http:
        kinds = ["image", "video", "audio", ".pdf", ".PDF", ".tar.gz"]
        await accepted(http, slash(options=[opt(kind=ATTACHMENT, file_types=kinds)]))


@pytest.mark.parametrize("value", ["pdf", ".", "images", "", ". pdf", 3])
async def test_a_file_type_neither_a_group_nor_an_extension_is_refused(value: object) -> None:
    async with commands_http() as http:
        option = opt(kind=ATTACHMENT, file_types=["image", value])
        answer = await http.put([slash(options=[option])])
        assert refused_at(answer, 0, "options", 0, "file_types", 1)


async def test_at_most_10_file_types() -> None:
    async with commands_http() as http:
        ten = [f".x{i}" for i in range(10)]
        await accepted(http, slash(options=[opt(kind=ATTACHMENT, file_types=ten)]))
        answer = await http.put([slash(options=[opt(kind=ATTACHMENT, file_types=[*ten, ".y"])])])
        assert refused_at(answer, 0, "options", 0, "file_types") == ["BASE_TYPE_MAX_LENGTH"]


# ---- what Discord leaves unchecked ----


async def test_a_minimum_above_the_maximum_is_registered_as_discord_does() -> None:
    """discord-api-docs issue 5149: Discord registers `min_length` 3000 with `max_length` 1 (an
    option nobody can fill); nothing documents a refusal, for lengths or values. The fake does
    not refuse what Discord takes: test_command_limits catches it in the bot's own commands."""
    async with commands_http() as http:
        await accepted(
            http,
            slash(
                options=[
                    opt(min_length=3000, max_length=1),
                    opt("i", INTEGER, min_value=10, max_value=1),
                    opt("n", NUMBER, min_value=2.5, max_value=-2.5),
                ]
            ),
        )


async def test_choices_alike_are_registered_as_discord_does() -> None:
    """Neither the docs nor Discord's answers on record refuse two choices of one name or
    value (the spec's `choices` has no `uniqueItems`, where `channel_types` has)."""
    async with commands_http() as http:
        same_name = [{"name": "a", "value": "x"}, {"name": "a", "value": "y"}]
        same_value = [{"name": "a", "value": 1}, {"name": "b", "value": 1}]
        await accepted(
            http,
            slash(options=[opt(choices=same_name), opt("i", INTEGER, choices=same_value)]),
        )
