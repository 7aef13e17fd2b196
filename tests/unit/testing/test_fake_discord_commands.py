"""The fake Discord refuses the application commands Discord refuses (400, 50035 with the
errors at their field paths; 30032 for too many) and accepts the boundary Discord accepts. One
test per rule, over raw HTTP: Bulk Overwrite (global and guild), Create and Edit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import discord
import pytest

from tzurot.testing.fake_discord import FakeDiscord, Json

STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER_COMMAND, MESSAGE_COMMAND = 2, 3

Answer = tuple[int, Any]


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession
    guild: Json

    async def call(self, method: str, path: str, body: Any) -> Answer:
        headers = {"Authorization": f"Bot {self.fake.token}"}
        url = f"{self.fake.api_base}/applications/{self.fake.application_id}{path}"
        async with self.session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def put(self, commands: Any, *, guild: bool = False) -> Answer:
        scope = f"/guilds/{self.guild['id']}" if guild else ""
        return await self.call("PUT", f"{scope}/commands", commands)


@asynccontextmanager
async def commands_http() -> AsyncIterator[Http]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        yield Http(fake, session, fake.add_guild())


def slash(name: str = "ping", description: str = "d", **fields: Any) -> Json:
    return {"type": 1, "name": name, "description": description, **fields}


def opt(name: str = "o", kind: int = STRING, description: str = "d", **fields: Any) -> Json:
    return {"type": kind, "name": name, "description": description, **fields}


def refused_at(answer: Answer, *path: str | int) -> list[str]:
    """The error codes Discord gives at `path` of a 400 50035 answer."""
    status, body = answer
    assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body"), body
    node = body["errors"]
    for key in path:
        node = node[str(key)]
    return [e["code"] for e in node["_errors"]]


async def accepted(http: Http, *commands: Json, guild: bool = False) -> None:
    status, body = await http.put(list(commands), guild=guild)
    assert status == 200, body


# ---- names ----


async def test_names_are_1_to_32_characters() -> None:
    async with commands_http() as http:
        await accepted(http, slash("a" * 32), slash("b"))
        assert refused_at(await http.put([slash("a" * 33)]), 0, "name") == ["BASE_TYPE_BAD_LENGTH"]
        assert refused_at(await http.put([slash("")]), 0, "name") == ["BASE_TYPE_BAD_LENGTH"]
        assert refused_at(await http.put([slash(options=[opt("o" * 33)])]), 0, "options", 0, "name")


@pytest.mark.parametrize("name", ["hello world", "Ping", "hi!", "emoji😀", "Écrire", "İ"])
async def test_slash_names_outside_the_regex_or_not_lowercase_are_refused(name: str) -> None:
    async with commands_http() as http:
        codes = refused_at(await http.put([slash(name)]), 0, "name")
        assert codes == ["APPLICATION_COMMAND_INVALID_NAME"]
        option = refused_at(await http.put([slash(options=[opt(name)])]), 0, "options", 0, "name")
        assert option == ["APPLICATION_COMMAND_INVALID_NAME"]


async def test_slash_names_take_letters_numbers_dashes_devanagari_and_thai() -> None:
    async with commands_http() as http:
        names = ["a-b_c'd", "straße", "привет", "नमस्ते", "สวัสดี", "日本語", "x2", "ǆ"]
        await accepted(http, *(slash(n) for n in names))


async def test_user_and_message_commands_take_mixed_case_and_spaces_but_no_description() -> None:
    async with commands_http() as http:
        await accepted(http, {"type": USER_COMMAND, "name": "High Five"})
        menu = {"type": MESSAGE_COMMAND, "name": "Speak Aloud", "description": ""}
        await accepted(http, menu)
        too_long = {"type": MESSAGE_COMMAND, "name": "M" * 33}
        assert refused_at(await http.put([too_long]), 0, "name") == ["BASE_TYPE_BAD_LENGTH"]
        assert refused_at(await http.put([{**menu, "description": "Reads it"}]), 0, "description")
        assert refused_at(await http.put([{**menu, "options": [opt()]}]), 0, "options")


async def test_a_guild_has_no_primary_entry_point_command() -> None:
    async with commands_http() as http:
        entry = {"type": 4, "name": "launch", "description": "Play"}
        assert refused_at(await http.put([entry], guild=True), 0, "type") == ["BASE_TYPE_CHOICES"]
        await accepted(http, entry)


# ---- descriptions ----


async def test_descriptions_are_1_to_100_characters() -> None:
    async with commands_http() as http:
        await accepted(http, slash(description="d" * 100, options=[opt(description="e" * 100)]))
        assert refused_at(await http.put([slash(description="d" * 101)]), 0, "description")
        assert refused_at(await http.put([slash(description="")]), 0, "description")
        no_description = {"type": 1, "name": "ping"}
        assert refused_at(await http.put([no_description]), 0, "description") == [
            "BASE_TYPE_REQUIRED"
        ]


async def test_an_option_description_of_115_characters_is_refused() -> None:
    async with commands_http() as http:
        answer = await http.put([slash(options=[opt(description="x" * 115)])], guild=True)
        assert refused_at(answer, 0, "options", 0, "description") == ["BASE_TYPE_BAD_LENGTH"]
        # discord.py reads the path out of the answer, as it does from Discord's.
        response = cast(aiohttp.ClientResponse, _Response())  # the two fields it reads
        error = discord.HTTPException(response, answer[1])
        assert "In 0.options.0.description: Must be between 1 and 100 in length." in str(error)
        assert http.fake.synced_commands == {}
        assert http.fake.refusals == [("bulk_overwrite_commands", 400, 50035)]


class _Response:
    status = 400
    reason = "Bad Request"


# ---- options ----


async def test_at_most_25_options_per_command_and_subcommand() -> None:
    async with commands_http() as http:
        options = [opt(f"o{i}") for i in range(25)]
        sub = opt("sub", SUB_COMMAND, options=options)
        await accepted(http, slash(options=options), slash("nested", options=[sub]))
        more = [*options, opt("o25")]
        assert refused_at(await http.put([slash(options=more)]), 0, "options") == [
            "BASE_TYPE_MAX_LENGTH"
        ]
        deep = slash(options=[opt("sub", SUB_COMMAND, options=more)])
        assert refused_at(await http.put([deep]), 0, "options", 0, "options")


async def test_required_options_come_before_optional_ones() -> None:
    async with commands_http() as http:
        first = [opt("a", required=True), opt("b", required=False), opt("c")]
        await accepted(http, slash(options=first))
        later = [opt("a"), opt("b", required=True)]
        assert refused_at(await http.put([slash(options=later)]), 0, "options") == [
            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"
        ]


async def test_option_names_are_unique_within_their_options() -> None:
    async with commands_http() as http:
        twice = [opt("a"), opt("a", BOOLEAN)]
        assert refused_at(await http.put([slash(options=twice)]), 0, "options", 1, "name")
        # The same name in two subcommands is fine.
        subs = [opt(s, SUB_COMMAND, options=[opt("a")]) for s in ("x", "y")]
        await accepted(http, slash(options=subs))


async def test_option_fields_only_for_their_types() -> None:
    async with commands_http() as http:
        for field, value in [
            ("choices", [{"name": "a", "value": 1}]),
            ("autocomplete", True),
            ("min_value", 0),
            ("max_length", 5),
            ("channel_types", [0]),
        ]:
            answer = await http.put([slash(options=[{**opt(kind=BOOLEAN), field: value}])])
            assert refused_at(answer, 0, "options", 0, field), field
        await accepted(http, slash(options=[opt(kind=BOOLEAN, autocomplete=False)]))


# ---- choices ----


async def test_at_most_25_choices_with_names_and_string_values_up_to_100() -> None:
    async with commands_http() as http:
        choices = [{"name": f"{i:02}" + "n" * 98, "value": "v" * 100} for i in range(25)]
        await accepted(http, slash(options=[opt(choices=choices)]))
        more = [*choices, {"name": "x", "value": "x"}]
        assert refused_at(
            await http.put([slash(options=[opt(choices=more)])]), 0, "options", 0, "choices"
        ) == ["BASE_TYPE_MAX_LENGTH"]
        for bad, field in (
            ({"name": "n" * 101, "value": "v"}, "name"),
            ({"name": "", "value": "v"}, "name"),
            ({"name": "n", "value": "v" * 101}, "value"),
        ):
            answer = await http.put([slash(options=[opt(choices=[bad])])])
            assert refused_at(answer, 0, "options", 0, "choices", 0, field)


async def test_choice_values_have_the_options_type_and_range() -> None:
    async with commands_http() as http:
        edge = [{"name": "max", "value": 2**53 - 1}, {"name": "min", "value": -(2**53) + 1}]
        await accepted(http, slash(options=[opt(kind=INTEGER, choices=edge)]))
        await accepted(
            http, slash(options=[opt(kind=NUMBER, choices=[{"name": "h", "value": 0.5}])])
        )
        for kind, value in ((INTEGER, 2**53), (INTEGER, "1"), (INTEGER, 1.5), (NUMBER, "x")):
            answer = await http.put(
                [slash(options=[opt(kind=kind, choices=[{"name": "c", "value": value}])])]
            )
            assert refused_at(answer, 0, "options", 0, "choices", 0, "value"), (kind, value)


async def test_autocomplete_never_with_choices() -> None:
    async with commands_http() as http:
        await accepted(http, slash(options=[opt(autocomplete=True)]))
        both = opt(autocomplete=True, choices=[{"name": "a", "value": "a"}])
        assert refused_at(await http.put([slash(options=[both])]), 0, "options", 0, "autocomplete")


# ---- bounds ----


async def test_lengths_and_values_within_discords_bounds() -> None:
    async with commands_http() as http:
        await accepted(
            http,
            slash(
                options=[
                    opt(min_length=0, max_length=6000),
                    opt("i", INTEGER, min_value=-(2**53) + 1, max_value=2**53 - 1),
                    opt("n", NUMBER, min_value=-0.5, max_value=2.5),
                ]
            ),
        )
        for option, field in (
            (opt(min_length=-1), "min_length"),
            (opt(max_length=0), "max_length"),
            (opt(max_length=6001), "max_length"),
            (opt(kind=INTEGER, min_value=0.5), "min_value"),
            (opt(kind=INTEGER, max_value=2**53), "max_value"),
            (opt(kind=NUMBER, max_value=2**53 + 2), "max_value"),
        ):
            answer = await http.put([slash(options=[option])])
            assert refused_at(answer, 0, "options", 0, field), option


# ---- nesting ----


async def test_subcommand_groups_hold_subcommands_and_nothing_deeper() -> None:
    async with commands_http() as http:
        sub = opt("get", SUB_COMMAND, options=[opt("who", 6, required=True)])
        group = opt("user", SUB_COMMAND_GROUP, options=[sub])
        await accepted(http, slash("permissions", options=[group, opt("list", SUB_COMMAND)]))
        inner_type = (0, "options", 0, "options", 0, "type")
        for outer, inner in (
            (SUB_COMMAND_GROUP, opt("deeper", SUB_COMMAND_GROUP)),
            (SUB_COMMAND_GROUP, opt("plain")),
            (SUB_COMMAND, opt("deeper", SUB_COMMAND)),
            (SUB_COMMAND, opt("deeper", SUB_COMMAND_GROUP)),
        ):
            answer = await http.put([slash(options=[opt("outer", outer, options=[inner])])])
            assert refused_at(answer, *inner_type) == ["BASE_TYPE_CHOICES"], (outer, inner)


async def test_subcommands_and_plain_options_do_not_mix() -> None:
    async with commands_http() as http:
        mixed = [opt("sub", SUB_COMMAND), opt("plain")]
        assert refused_at(await http.put([slash(options=mixed)]), 0, "options") == [
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID"
        ]
        required_sub = opt("sub", SUB_COMMAND, required=True)
        assert refused_at(
            await http.put([slash(options=[required_sub])]), 0, "options", 0, "required"
        )


# ---- size ----


def sized(total: int, *, fr_name: str | None = None) -> Json:
    """A command of `total` characters by Discord's count (names, descriptions, choice names and
    values), not counting a French name given."""
    full = [{"name": f"{i:02}" + "n" * 98, "value": "v" * 100} for i in range(25)]
    tail = [{"name": f"b{i:02}" + "n" * 97, "value": "v" * 100} for i in range(13)]
    rest = total - (3 + 100) - 2 * (1 + 100) - 25 * 200 - 13 * 200
    tail.append({"name": "last", "value": "v" * (rest - 4)})
    options = [
        opt("a", description="e" * 100, choices=full),
        opt("b", description="e" * 100, choices=tail),
    ]
    command = slash("big", "d" * 100, options=options)
    if fr_name is not None:
        command["name_localizations"] = {"fr": fr_name}
    return command


async def test_a_command_counts_at_most_8000_characters_its_longest_localization_counted() -> None:
    async with commands_http() as http:
        await accepted(http, sized(8000))
        await accepted(http, sized(8000, fr_name="bi"))  # shorter than "big": not counted
        await accepted(http, sized(7999, fr_name="bigg"))  # counted instead of "big"
        too_large = ["APPLICATION_COMMAND_TOO_LARGE"]
        assert refused_at(await http.put([sized(8001)]), 0) == too_large
        assert refused_at(await http.put([sized(7999, fr_name="biggg")]), 0) == too_large


# ---- localizations ----


async def test_localizations_follow_the_fields_rules_in_discords_locales() -> None:
    async with commands_http() as http:
        await accepted(
            http,
            slash(
                name_localizations={"fr": "bonjour", "ja": "こんにちは"},
                description_localizations={"de": "d" * 100},
            ),
        )
        for fields, path in (
            ({"name_localizations": {"fr": "Bonjour"}}, ("name_localizations", "fr")),
            ({"name_localizations": {"xx": "ping"}}, ("name_localizations", "xx")),
            ({"description_localizations": {"fr": "d" * 101}}, ("description_localizations", "fr")),
        ):
            assert refused_at(await http.put([{**slash(), **fields}]), 0, *path)
        choice = {"name": "a", "value": "a", "name_localizations": {"fr": "n" * 101}}
        answer = await http.put([slash(options=[opt(choices=[choice])])])
        assert refused_at(answer, 0, "options", 0, "choices", 0, "name_localizations", "fr")


async def test_a_localized_option_name_is_distinct_from_its_siblings_names() -> None:
    async with commands_http() as http:
        clash = [opt("a"), opt("b", name_localizations={"fr": "a"})]
        answer = await http.put([slash(options=clash)])
        assert refused_at(answer, 0, "options", 1, "name_localizations", "fr")
        same_locale = [
            opt("a", name_localizations={"fr": "x"}),
            opt("b", name_localizations={"fr": "x"}),
        ]
        assert refused_at(
            await http.put([slash(options=same_locale)]),
            0,
            "options",
            1,
            "name_localizations",
            "fr",
        )
        await accepted(http, slash(options=[opt("a", name_localizations={"fr": "a"}), opt("b")]))


# ---- the scope: unique names, how many ----


async def test_command_names_are_unique_per_type_within_a_scope() -> None:
    async with commands_http() as http:
        answer = await http.put([slash("ping"), slash("pong"), slash("ping")])
        assert refused_at(answer, 2) == ["APPLICATION_COMMANDS_DUPLICATE_NAME"]
        await accepted(http, slash("ping"), {"type": USER_COMMAND, "name": "ping"})
        await accepted(http, slash("ping"), guild=True)  # a guild's and the global one: fine


@pytest.mark.parametrize(("kind", "limit"), [(1, 100), (USER_COMMAND, 15), (MESSAGE_COMMAND, 15)])
async def test_at_most_100_slash_15_user_and_15_message_commands(kind: int, limit: int) -> None:
    def command(i: int) -> Json:
        return slash(f"c{i}") if kind == 1 else {"type": kind, "name": f"c{i}"}

    async with commands_http() as http:
        await accepted(http, *(command(i) for i in range(limit)), guild=True)
        status, body = await http.put([command(i) for i in range(limit + 1)], guild=True)
        assert (status, body["code"]) == (400, 30032)
        assert len(http.fake.synced_commands[http.guild["id"]]) == limit  # unchanged


# ---- Create and Edit ----


async def test_create_checks_the_command_and_overwrites_one_of_the_same_name() -> None:
    async with commands_http() as http:
        status, created = await http.call("POST", "/commands", slash())
        assert status == 201
        status, again = await http.call("POST", "/commands", slash(description="new"))
        assert (status, again["id"], again["description"]) == (200, created["id"], "new")
        answer = await http.call("POST", "/commands", slash("x", options=[opt(description="")]))
        assert refused_at(answer, "options", 0, "description") == ["BASE_TYPE_BAD_LENGTH"]
        assert [c["name"] for c in http.fake.synced_commands["global"]] == ["ping"]


async def test_create_beyond_the_limit_is_30032() -> None:
    async with commands_http() as http:
        await accepted(http, *(slash(f"c{i}") for i in range(100)), guild=True)
        status, body = await http.call("POST", f"/guilds/{http.guild['id']}/commands", slash())
        assert (status, body["code"]) == (400, 30032)


async def test_edit_checks_the_edited_command() -> None:
    async with commands_http() as http:
        await accepted(http, slash("ping"), slash("pong"))
        ping = http.fake.synced_commands["global"][0]
        path = f"/commands/{ping['id']}"
        assert refused_at(await http.call("PATCH", path, {"description": "d" * 101}), "description")
        assert refused_at(await http.call("PATCH", path, {"name": "pong"}), "name") == [
            "APPLICATION_COMMANDS_DUPLICATE_NAME"
        ]
        status, edited = await http.call("PATCH", path, {"description": "d" * 100})
        assert (status, edited["id"], edited["name"]) == (200, ping["id"], "ping")
        status, body = await http.call("PATCH", "/commands/123", {"description": "x"})
        assert (status, body["code"]) == (404, 10063)
