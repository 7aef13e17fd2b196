"""The fake Discord's `slash` sends only what Discord's client would for the registered command
(discord-api-docs, Application Commands: the option structure, types, choices, subcommands,
autocomplete); anything else is InvalidSlashCommand, the test's input being what is wrong.
One test per rule, each with what still passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, FakeInteraction, InvalidSlashCommand, Json

SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER = 1, 2, 3, 4, 5, 6
CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 7, 8, 9, 10, 11
VOICE = 2  # a channel type


def slash(name: str, **fields: Any) -> Json:
    return {"type": 1, "name": name, "description": "d", **fields}


def opt(name: str, kind: int, **fields: Any) -> Json:
    return {"type": kind, "name": name, "description": "d", **fields}


def choices(*values: object) -> list[Json]:
    return [{"name": f"choice {v}", "value": v} for v in values]


TOOL = slash(
    "tool",
    options=[
        opt("name", STRING, required=True, min_length=2, max_length=5),
        opt("count", INTEGER, min_value=1, max_value=10),
        opt("ratio", NUMBER, min_value=0.25, max_value=4.0),
        opt("big", INTEGER),
        opt("huge", NUMBER),
        opt("flag", BOOLEAN),
        opt("who", USER),
        opt("where", CHANNEL, channel_types=[0]),
        opt("role", ROLE),
        opt("either", MENTIONABLE),
        opt("file", ATTACHMENT, file_types=["image", ".PDF"]),
        opt("level", STRING, choices=choices("low", "high")),
        opt("size", INTEGER, choices=choices(1, 3)),
        opt("query", STRING, autocomplete=True, min_length=3, max_length=6),
        opt("pick", INTEGER, autocomplete=True, min_value=1, max_value=5),
        opt("weight", NUMBER, autocomplete=True, min_value=0.5),
        opt("note", STRING),
    ],
)
CHARACTER = slash(
    "character",
    options=[
        opt("create", SUB_COMMAND, options=[opt("name", STRING, required=True)]),
        opt(
            "alias",
            SUB_COMMAND_GROUP,
            options=[opt("add", SUB_COMMAND, options=[opt("alias", STRING, required=True)])],
        ),
    ],
)
EVERYWHERE = slash("help")


@dataclass
class Scene:
    fake: FakeDiscord
    guild: Json
    channel: Json
    user: Json

    async def slash(
        self, command: str, options: dict[str, Any] | None = None, **kwargs: Any
    ) -> FakeInteraction:
        return await self.fake.slash(self.channel, self.user, command, options, **kwargs)

    async def refused(self, command: str, options: dict[str, Any], **kwargs: Any) -> str:
        """The problem InvalidSlashCommand names for this invocation."""
        with pytest.raises(InvalidSlashCommand) as refused:
            await self.slash(command, options, **kwargs)
        return str(refused.value)


async def _put(session: aiohttp.ClientSession, fake: FakeDiscord, scope: str, body: Any) -> None:
    url = f"{fake.api_base}/applications/{fake.application_id}{scope}/commands"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with session.put(url, json=body, headers=headers) as answer:
        assert answer.status == 200, await answer.text()


@asynccontextmanager
async def registered() -> AsyncIterator[Scene]:
    """`tool` and `character` registered in a guild, `help` globally, as a bot's sync does."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        await _put(session, fake, f"/guilds/{guild['id']}", [TOOL, CHARACTER])
        await _put(session, fake, "", [EVERYWHERE])
        scene = Scene(fake, guild, fake.add_channel(guild, "general"), fake.make_user("alice"))
        yield scene


def sent_options(record: FakeInteraction) -> list[Json]:
    options: list[Json] = record.data["data"]["options"]
    return options


# ---- the command ----


async def test_a_command_the_app_did_not_register_there_is_refused() -> None:
    async with registered() as scene:
        assert "/nope is not a slash command" in await scene.refused("nope", {})
        other = scene.fake.add_channel(scene.fake.add_guild("Other"), "general")
        with pytest.raises(InvalidSlashCommand, match="/tool is not a slash command"):
            await scene.fake.slash(other, scene.user, "tool", {"name": "ab"})
        await scene.fake.slash(other, scene.user, "help")  # a global command is everywhere
        await scene.slash("help")
    async with FakeDiscord() as bare:  # no app registered any: still none is a command
        channel = bare.add_channel(bare.add_guild(), "general")
        with pytest.raises(InvalidSlashCommand, match="/anything is not a slash command"):
            await bare.slash(channel, bare.make_user("a"), "anything", {"x": 1})


async def test_only_a_fake_told_not_to_validate_takes_any_slash_command() -> None:
    async with FakeDiscord(validate_slash_options=False) as loose:
        channel = loose.add_channel(loose.add_guild(), "general")
        record = await loose.slash(channel, loose.make_user("a"), "anything", {"x": 1, "y": "z"})
        assert [(o["name"], o["type"]) for o in sent_options(record)] == [
            ("x", INTEGER),
            ("y", STRING),
        ]


async def test_the_interaction_names_the_registered_command_and_its_option_types() -> None:
    async with registered() as scene:
        guild_command = scene.fake.synced_commands[scene.guild["id"]][0]
        record = await scene.slash("tool", {"name": "ab", "ratio": 2, "flag": True})
        data = record.data["data"]
        assert (data["id"], data["guild_id"]) == (guild_command["id"], scene.guild["id"])
        # An integer typed into a NUMBER option is a NUMBER.
        assert [(o["name"], o["type"], o["value"]) for o in sent_options(record)] == [
            ("name", STRING, "ab"),
            ("ratio", NUMBER, 2),
            ("flag", BOOLEAN, True),
        ]
        help_data = (await scene.slash("help")).data["data"]
        assert help_data["id"] == scene.fake.synced_commands["global"][0]["id"]
        assert "guild_id" not in help_data


# ---- options ----


async def test_an_option_the_command_does_not_have_is_refused() -> None:
    async with registered() as scene:
        problem = await scene.refused("tool", {"name": "ab", "colour": "red"})
        assert "no option 'colour'" in problem
        assert "no option 'name'" in await scene.refused("help", {"name": "ab"})


async def test_a_missing_required_option_is_refused() -> None:
    async with registered() as scene:
        assert "required option 'name' missing" in await scene.refused("tool", {"count": 2})
        await scene.slash("tool", {"name": "ab"})  # the optional ones may be left out


async def test_a_value_of_another_type_is_refused() -> None:
    async with registered() as scene:
        fake = scene.fake
        user, role = fake.make_user("bob"), fake.add_role(scene.guild, "mods")
        voice_ok = fake.add_channel(scene.guild, "lounge")
        picture = fake.upload(scene.channel, "a.png", b"png", "image/png")
        wrong = [
            ("name", 12),
            ("count", "3"),
            ("count", 2.5),
            ("count", True),  # a bool is no INTEGER
            ("ratio", "1.5"),
            ("flag", "true"),
            ("flag", 1),
            ("who", "bob"),
            ("who", picture),
            ("where", user),
            ("role", voice_ok),
            ("either", picture),
            ("file", user),
        ]
        for name, value in wrong:
            problem = await scene.refused("tool", {"name": "ab", name: value})
            assert f"option {name!r} is " in problem, (name, value)
        good = {
            "count": 3,
            "ratio": 1.5,
            "flag": False,
            "who": user,
            "where": voice_ok,
            "role": role,
            "either": role,
            "file": picture,
        }
        record = await scene.slash("tool", {"name": "ab", **good})
        types = {o["name"]: o["type"] for o in sent_options(record)}
        assert types == {
            "name": STRING,
            "count": INTEGER,
            "ratio": NUMBER,
            "flag": BOOLEAN,
            "who": USER,
            "where": CHANNEL,
            "role": ROLE,
            "either": MENTIONABLE,
            "file": ATTACHMENT,
        }
        resolved = record.data["data"]["resolved"]
        assert set(resolved) == {"users", "members", "channels", "roles", "attachments"}
        assert resolved["channels"][voice_ok["id"]]["name"] == "lounge"
        await scene.slash("tool", {"name": "ab", "either": user})


async def test_a_string_outside_its_min_and_max_length_is_refused() -> None:
    async with registered() as scene:
        assert "fewer than its min_length 2" in await scene.refused("tool", {"name": "a"})
        assert "more than its max_length 5" in await scene.refused("tool", {"name": "abcdef"})
        await scene.slash("tool", {"name": "ab"})
        await scene.slash("tool", {"name": "abcde"})


async def test_a_required_string_left_empty_or_blank_is_refused() -> None:
    # discord-api-docs #7278: a required STRING cannot be sent empty, even with min_length 0
    # (`character create name` has none); #4480: nor only spaces, which the client strips.
    async with registered() as scene:
        for blank in ("", "   ", "\t\n", "\u3000\xa0"):
            problem = await scene.refused("character", {"name": blank}, subcommand=("create",))
            assert "required option 'name' is empty" in problem, repr(blank)
            assert "required option 'name' is empty" in await scene.refused("tool", {"name": blank})
        await scene.slash("character", {"name": "x"}, subcommand=("create",))


async def test_an_optional_string_left_empty_or_blank_is_not_sent() -> None:
    async with registered() as scene:
        for blank in ("", "  ", "\n"):
            record = await scene.slash("tool", {"name": "ab", "note": blank, "level": blank})
            assert [o["name"] for o in sent_options(record)] == ["name"], repr(blank)


async def test_a_typed_string_is_sent_trimmed_and_its_length_counted_trimmed() -> None:
    async with registered() as scene:
        record = await scene.slash("tool", {"name": "  ab ", "note": "\n hi  there \t"})
        assert [o["value"] for o in sent_options(record)] == ["ab", "hi  there"]
        assert "1 characters, fewer than its min_length 2" in await scene.refused(
            "tool", {"name": "  a  "}
        )
        record = await scene.slash("tool", {"name": "abcde "})  # max_length 5, trimmed
        assert sent_options(record)[0]["value"] == "abcde"
        # A choice is picked, not typed: its value is sent as registered.
        assert "choices" in await scene.refused("tool", {"name": "ab", "level": " low"})


async def test_a_string_option_without_max_length_takes_at_most_6000_characters() -> None:
    async with registered() as scene:
        problem = await scene.refused("tool", {"name": "ab", "note": "x" * 6001})
        assert "6001 characters, more than the 6000" in problem
        await scene.slash("tool", {"name": "ab", "note": "x" * 6000})


async def test_a_number_outside_its_min_and_max_value_is_refused() -> None:
    async with registered() as scene:
        for name, value in [("count", 0), ("count", 11), ("ratio", 0.2), ("ratio", 4.01)]:
            problem = await scene.refused("tool", {"name": "ab", name: value})
            assert "its min_value" in problem or "its max_value" in problem, (name, value)
        await scene.slash("tool", {"name": "ab", "count": 1, "ratio": 0.25})
        await scene.slash("tool", {"name": "ab", "count": 10, "ratio": 4})


async def test_a_number_beyond_what_its_type_holds_is_refused() -> None:
    async with registered() as scene:
        beyond = [("big", 2**53), ("big", -(2**53)), ("huge", 2.0**54), ("huge", 10**400)]
        for name, value in beyond:
            assert "outside" in await scene.refused("tool", {"name": "ab", name: value})
        assert "outside" in await scene.refused("tool", {"name": "ab", "huge": float("inf")})
        await scene.slash("tool", {"name": "ab", "big": 2**53 - 1, "huge": -(2.0**53)})


async def test_a_value_not_among_the_choices_is_refused() -> None:
    async with registered() as scene:
        problem = await scene.refused("tool", {"name": "ab", "level": "medium"})
        assert "not one of its choices ['low', 'high']" in problem
        # The choice's name is what the user reads; its value is what is sent.
        assert "choices" in await scene.refused("tool", {"name": "ab", "level": "choice low"})
        assert "choices" in await scene.refused("tool", {"name": "ab", "size": 2})
        await scene.slash("tool", {"name": "ab", "level": "high", "size": 3})


async def test_a_channel_or_file_of_a_type_the_option_filters_out_is_refused() -> None:
    async with registered() as scene:
        fake = scene.fake
        voice = fake.add_channel(scene.guild, "talk", kind=VOICE)
        assert "channel types [0]" in await scene.refused("tool", {"name": "ab", "where": voice})
        text = fake.upload(scene.channel, "notes.txt", b"t", "text/plain")
        assert "file types" in await scene.refused("tool", {"name": "ab", "file": text})
        for filename in ("A.PNG", "b.pdf", "c.webp"):
            upload = fake.upload(scene.channel, filename, b"x", "application/octet-stream")
            await scene.slash("tool", {"name": "ab", "file": upload, "where": scene.channel})


# ---- subcommands ----


async def test_a_subcommand_or_group_that_does_not_exist_is_refused() -> None:
    async with registered() as scene:
        named = {"name": "ab"}
        assert "no subcommand or group 'delete'" in await scene.refused(
            "character", named, subcommand=("delete",)
        )
        assert "/tool has no subcommand" in await scene.refused("tool", named, subcommand=("x",))
        assert "no subcommand or group 'x'" in await scene.refused(
            "character", named, subcommand=("create", "x")
        )
        assert "no subcommand or group 'remove'" in await scene.refused(
            "character", {"alias": "a"}, subcommand=("alias", "remove")
        )
        # A command or group with subcommands runs only one of them.
        assert "not runnable by itself" in await scene.refused("character", named)
        assert "not runnable by itself" in await scene.refused(
            "character", {"alias": "a"}, subcommand=("alias",)
        )
        record = await scene.slash("character", {"alias": "a"}, subcommand=("alias", "add"))
        group = sent_options(record)[0]
        assert (group["name"], group["type"]) == ("alias", SUB_COMMAND_GROUP)
        assert (group["options"][0]["name"], group["options"][0]["type"]) == ("add", SUB_COMMAND)
        await scene.slash("character", named, subcommand=("create",))


# ---- autocomplete ----


async def test_an_autocomplete_is_sent_only_for_an_autocomplete_option() -> None:
    async with registered() as scene:
        for focused in ("name", "level"):  # no autocomplete; choices (never with autocomplete)
            problem = await scene.refused("tool", {"name": "ab", "level": "low"}, focused=focused)
            assert f"option {focused!r} has no autocomplete" in problem
        problem = await scene.refused("tool", {"name": "ab"}, focused="query")
        assert "the focused option 'query' is not among the options given" in problem
        record = await scene.slash("tool", {"query": "ab"}, focused="query")
        assert record.data["type"] == 4
        assert sent_options(record) == [
            {"name": "query", "type": STRING, "value": "ab", "focused": True}
        ]


async def test_an_autocomplete_takes_partial_input_but_not_what_the_client_refuses() -> None:
    async with registered() as scene:
        # Still being typed: shorter than min_length, the required `name` not filled yet.
        await scene.slash("tool", {"query": ""}, focused="query")
        await scene.slash("tool", {"query": "q"}, focused="query")
        # The client stops the typing at max_length.
        problem = await scene.refused("tool", {"query": "abcdefg"}, focused="query")
        assert "more than its max_length 6" in problem
        # A value of another type is the test's mistake, focused or not.
        assert "not string '3'" in await scene.refused(
            "tool", {"query": "q", "count": "3"}, focused="query"
        )


async def test_an_autocomplete_leaves_out_the_filled_options_the_client_would_refuse() -> None:
    async with registered() as scene:
        voice = scene.fake.add_channel(scene.guild, "talk", kind=VOICE)
        failing = {"level": "medium", "name": "a", "count": 0, "size": 2, "where": voice}
        passing = {"flag": True, "ratio": 2}
        given = {"query": "q", **failing, **passing}
        record = await scene.slash("tool", given, focused="query")
        assert [o["name"] for o in sent_options(record)] == ["query", "flag", "ratio"]
        assert "channels" not in record.data["data"].get("resolved", {})


async def test_an_autocomplete_leaves_out_the_options_left_empty_and_trims_the_filled() -> None:
    # Only the options "the user has already filled" are sent besides the focused one
    # (Application Commands "Autocomplete"); the focused one is the raw text typed.
    async with registered() as scene:
        given = {"query": " q", "name": "", "note": "   ", "level": "", "flag": True}
        record = await scene.slash("tool", given, focused="query")
        assert [(o["name"], o["value"]) for o in sent_options(record)] == [
            ("query", " q"),
            ("flag", True),
        ]
        record = await scene.slash("tool", {"query": "q", "note": ""}, focused="query")
        assert [o["name"] for o in sent_options(record)] == ["query"]
        record = await scene.slash("tool", {"query": "", "note": " x "}, focused="query")
        assert [(o["name"], o["value"]) for o in sent_options(record)] == [
            ("query", ""),
            ("note", "x"),
        ]


async def test_a_focused_integer_or_number_is_sent_as_the_string_typed() -> None:
    async with registered() as scene:
        # discord-api-docs #4338/#4956, discord-api-types #1175: the raw input, even "" or
        # "e", and not yet held to min_value/max_value.
        for typed in ("", "e", "3", "99", "-"):
            record = await scene.slash("tool", {"pick": typed}, focused="pick")
            assert sent_options(record) == [
                {"name": "pick", "type": INTEGER, "value": typed, "focused": True}
            ]
        record = await scene.slash("tool", {"weight": "0.1"}, focused="weight")
        assert sent_options(record)[0] == {
            "name": "weight",
            "type": NUMBER,
            "value": "0.1",
            "focused": True,
        }
        for name, value in [("pick", 3), ("weight", 1.5)]:
            problem = await scene.refused("tool", {name: value}, focused=name)
            assert f"option {name!r} is being typed: the client sends a string" in problem
        # Submitted, it is a number again.
        assert "not string '3'" in await scene.refused("tool", {"name": "ab", "pick": "3"})
        record = await scene.slash("tool", {"name": "ab", "pick": 3})
        assert sent_options(record)[1] == {"name": "pick", "type": INTEGER, "value": 3}


async def test_every_problem_is_named_at_once() -> None:
    async with registered() as scene:
        problem = await scene.refused("tool", {"count": 0, "colour": "red"})
        assert problem.startswith("/tool: ")
        for part in ("no option 'colour'", "required option 'name' missing", "min_value 1"):
            assert part in problem
